import Foundation

/// Wall time per op category, for `mixdq bench --profile` (off by default: one branch per op).
public enum OpProfiler {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var seconds: [String: Double] = [:]
    nonisolated(unsafe) public static var enabled = false

    @inline(__always) public static func measure<T>(_ category: String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        lock.lock(); seconds[category, default: 0] += dt; lock.unlock()
        return result
    }
    public static func reset() { lock.lock(); seconds = [:]; lock.unlock() }
    public static var report: [(String, Double)] { lock.lock(); defer { lock.unlock() }; return seconds.sorted { $0.value > $1.value } }
}
