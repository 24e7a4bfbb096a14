import CDNNL
import CKernels
import Foundation

/// The one oneDNN CPU engine and stream the process uses.
///
/// oneDNN runs on its OpenMP runtime; every primitive executes on this stream and waits, so a
/// layer's output is ready when its Swift call returns.
public final class DNNLEngine: @unchecked Sendable {
    public static let shared = DNNLEngine()

    public let engine: dnnl_engine_t
    public let stream: dnnl_stream_t
    private let lock = NSLock()

    private init() {
        ComputeRuntime.configure()
        var e: dnnl_engine_t?
        DNNLEngine.check(dnnl_engine_create(&e, dnnl_cpu, 0), "engine_create")
        var s: dnnl_stream_t?
        DNNLEngine.check(dnnl_stream_create(&s, e, dnnl_stream_default_flags.rawValue), "stream_create")
        engine = e!
        stream = s!
    }

    /// Executes a primitive and waits for it. Serialised: one stream, one primitive at a time.
    public func execute(_ primitive: dnnl_primitive_t, _ args: [(Int32, dnnl_memory_t)]) {
        lock.lock(); defer { lock.unlock() }
        var execArgs = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
        DNNLEngine.check(dnnl_primitive_execute(primitive, stream, Int32(execArgs.count), &execArgs), "primitive_execute")
        DNNLEngine.check(dnnl_stream_wait(stream), "stream_wait")
    }

    /// oneDNN status codes are programming errors here (shapes are validated before reaching
    /// oneDNN), so a failure stops with the operation's name.
    public static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
        if status != dnnl_success {
            fatalError("oneDNN \(what()) failed with status \(status.rawValue)")
        }
    }

    /// Describes a plain tensor.
    public static func memoryDesc(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map { Int64($0) }
        check(dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, type, tag), "memory_desc_init \(dims)")
        return md
    }

    /// A memory object over caller-owned storage (the handle can be swapped per call).
    public func memory(_ md: dnnl_memory_desc_t, _ handle: UnsafeMutableRawPointer?) -> dnnl_memory_t {
        var md = md
        var m: dnnl_memory_t?
        DNNLEngine.check(dnnl_memory_create(&m, &md, engine, handle ?? UnsafeMutableRawPointer(bitPattern: 64)), "memory_create")
        return m!
    }

    /// Copies `src` laid out as `srcMD` into freshly allocated storage laid out as `dstMD`.
    public func reorder(_ src: UnsafeRawPointer, _ srcMD: dnnl_memory_desc_t, to dstMD: dnnl_memory_desc_t) -> AlignedBuffer {
        var srcMD = srcMD, dstMD = dstMD
        let out = AlignedBuffer(byteCount: dnnl_memory_desc_get_size(&dstMD))
        var pd: dnnl_primitive_desc_t?
        DNNLEngine.check(dnnl_reorder_primitive_desc_create(&pd, &srcMD, engine, &dstMD, engine, nil), "reorder_primitive_desc_create")
        defer { dnnl_primitive_desc_destroy(pd) }
        var prim: dnnl_primitive_t?
        DNNLEngine.check(dnnl_primitive_create(&prim, pd), "reorder primitive_create")
        defer { dnnl_primitive_destroy(prim) }
        let s = memory(srcMD, UnsafeMutableRawPointer(mutating: src))
        let d = memory(dstMD, out.pointer)
        defer { dnnl_memory_destroy(s); dnnl_memory_destroy(d) }
        execute(prim!, [(DNNL_ARG_FROM, s), (DNNL_ARG_TO, d)])
        return out
    }

    /// Name of the implementation oneDNN picked (for logs and benchmarks).
    public static func implementationName(_ pd: dnnl_primitive_desc_t) -> String {
        var str: UnsafePointer<CChar>?
        if dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &str) == dnnl_success, let str {
            return String(cString: str)
        }
        return "unknown"
    }
}

/// Owned, 64-byte aligned raw storage (reordered weights, bf16 staging buffers).
public final class AlignedBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 64), alignment: 64)
    }
    deinit { pointer.deallocate() }
}

/// Process-wide settings of the compute runtime; idempotent, called before the first model loads.
public enum ComputeRuntime {
    nonisolated(unsafe) private static var configured = false

    public static func configure() {
        if configured { return }
        configured = true
        // OpenMP threads spin after each parallel region by default and would steal the cores
        // OpenBLAS needs for the next GEMM; make them sleep unless the user chose otherwise.
        setenv("OMP_WAIT_POLICY", "PASSIVE", 0)
        // Large tensors come and go every layer: serve them from mmap so freed memory returns to
        // the system at once (glibc's adaptive threshold would otherwise keep them on the heap,
        // inflating the resident size of multi-GB models).
        mdq_tune_allocator(256 * 1024, 1024 * 1024)
    }
}
