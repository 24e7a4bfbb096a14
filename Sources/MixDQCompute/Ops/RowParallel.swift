import CKernels
import Dispatch
import Foundation

/// Splits row-independent C kernels (GEGLU, LayerNorm, softmax) across the cores. Each row is
/// computed exactly as in one call, so results are bit-identical to the sequential kernel.
public enum RowParallel {
    /// Cores used (the machine's active processors).
    public static let workers = max(1, min(ProcessInfoCores.count, 8))
    /// Below this many elements a single call is cheaper than waking threads.
    public static let minimumElements = 1 << 16

    /// Which threads run the parts.
    public enum Pool: Sendable {
        /// The OpenMP team oneDNN runs on (libgomp): one pool of threads for the whole process.
        case openMP
        /// Dispatch's worker threads, where libgomp is not loaded (or `MIXDQ_PARALLEL=dispatch`).
        case dispatch
    }

    /// OpenMP when libgomp is loaded (always, beside oneDNN), unless `MIXDQ_PARALLEL=dispatch`.
    public static let pool: Pool = {
        if ProcessInfo.processInfo.environment["MIXDQ_PARALLEL"] == "dispatch" { return .dispatch }
        return mdq_openmp_available() != 0 ? .openMP : .dispatch
    }()

    public static func run(rows: Int, rowLength: Int, _ body: (Range<Int>) -> Void) {
        let parts = rows * rowLength >= minimumElements ? min(workers, rows) : 1
        if parts <= 1 { body(0..<rows); return }
        forEachPart(parts, on: pool) { p in
            let lo = rows * p / parts, hi = rows * (p + 1) / parts
            if hi > lo { body(lo..<hi) }
        }
    }

    /// Runs `body(p)` for every p in 0..<parts on `pool`, each exactly once, and returns when all have run.
    public static func forEachPart(_ parts: Int, on pool: Pool, _ body: (Int) -> Void) {
        guard parts > 0 else { return }
        if pool == .openMP, OpenMPTeam.run(parts: parts, body) { return }
        DispatchQueue.concurrentPerform(iterations: parts, execute: body)
    }
}

/// `mdq_parallel_for` with a Swift closure: the closure travels as the C context pointer.
private enum OpenMPTeam {
    static func run(parts: Int, _ body: (Int) -> Void) -> Bool {
        withoutActuallyEscaping(body) { escapable in
            var closure = escapable
            return withUnsafeMutablePointer(to: &closure) { context in
                mdq_parallel_for(parts, { context, part in
                    context?.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(part))
                }, context) == 0
            }
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
