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
