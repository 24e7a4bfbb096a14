import Foundation
import Dispatch

/// Splits row-independent C kernels (GEGLU, LayerNorm, softmax) across the cores. Each row is
/// computed exactly as in one call, so results are bit-identical to the sequential kernel.
public enum RowParallel {
    /// Cores used (the machine's active processors).
    public static let workers = max(1, min(ProcessInfoCores.count, 8))
    /// Below this many elements a single call is cheaper than waking threads.
    public static let minimumElements = 1 << 16

    public static func run(rows: Int, rowLength: Int, _ body: (Range<Int>) -> Void) {
        let parts = rows * rowLength >= minimumElements ? min(workers, rows) : 1
        if parts <= 1 { body(0..<rows); return }
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = rows * p / parts, hi = rows * (p + 1) / parts
            if hi > lo { body(lo..<hi) }
        }
    }
}

enum ProcessInfoCores {
    static let count: Int = {
        var n = 0
        #if os(Linux)
        n = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #endif
        return n > 0 ? n : 2
    }()
}
