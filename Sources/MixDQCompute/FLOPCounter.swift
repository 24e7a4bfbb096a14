import Foundation

/// Counts the multiply-accumulates the dense kernels execute, so benchmarks report GFLOP/s of
/// the work actually done (not a table figure).
public enum FLOPCounter {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var macs: Int = 0
    nonisolated(unsafe) public static var enabled = false

    @inline(__always) public static func add(macs n: Int) {
        guard enabled else { return }
        lock.lock(); macs += n; lock.unlock()
    }
    public static func reset() { lock.lock(); macs = 0; lock.unlock() }
    /// 2 FLOP per multiply-accumulate.
    public static var flops: Double { lock.lock(); defer { lock.unlock() }; return 2 * Double(macs) }
}

/// Process memory figures from /proc (Linux).
public enum ProcessMemory {
    /// Peak resident set size in bytes (VmHWM).
    public static var peakResidentBytes: Int { field("VmHWM:") }
    public static var residentBytes: Int { field("VmRSS:") }
    private static func field(_ name: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(name) {
            let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}

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
