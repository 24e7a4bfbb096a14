import CDNNL
import CKernels
import Foundation

/// A oneDNN call that failed: which primitive, on which shapes, and why. Reaching one is not a
/// crash: a CPU without an ISA the primitive needs (bf16 on an AVX2-only machine, or a process
/// limited by `ONEDNN_MAX_CPU_ISA`) or an allocation failure surfaces as this thrown error.
public struct DNNLError: Error, CustomStringConvertible, LocalizedError {
    public let operation: String
    public let status: dnnl_status_t
    public init(operation: String, status: dnnl_status_t) { self.operation = operation; self.status = status }

    public var description: String {
        let reason: String
        switch status {
        case dnnl_unimplemented:
            reason = "no implementation on this CPU (\(CPUInfo.current.summary)); bf16 needs AVX-512, int8 needs AVX2 or newer"
        case dnnl_out_of_memory: reason = "out of memory"
        case dnnl_invalid_arguments: reason = "invalid arguments (shapes or data types)"
        case dnnl_runtime_error: reason = "runtime error"
        default: reason = "status \(status.rawValue)"
        }
        return "oneDNN \(operation) failed: \(reason)"
    }
    public var errorDescription: String? { description }
}

/// The one oneDNN CPU engine and stream the process uses.
///
/// oneDNN runs on its OpenMP runtime; every primitive executes on this stream and waits, so a
/// layer's output is ready when its Swift call returns.
public final class DNNLEngine: @unchecked Sendable {
    public static let shared = DNNLEngine()

    private let engineHandle: dnnl_engine_t?
    private let streamHandle: dnnl_stream_t?
    private let setupError: DNNLError?
    private let lock = NSLock()

    private init() {
        ComputeRuntime.configure()
        var e: dnnl_engine_t?, s: dnnl_stream_t?
        var failure: DNNLError?
        let es = dnnl_engine_create(&e, dnnl_cpu, 0)
        if es != dnnl_success {
            failure = DNNLError(operation: "engine_create", status: es)
        } else {
            let ss = dnnl_stream_create(&s, e, dnnl_stream_default_flags.rawValue)
            if ss != dnnl_success { failure = DNNLError(operation: "stream_create", status: ss) }
        }
        engineHandle = e
        streamHandle = s
        setupError = failure
    }

    /// The CPU engine (throws if oneDNN could not create one).
    public var engine: dnnl_engine_t {
        get throws {
            if let setupError { throw setupError }
            guard let engineHandle else { throw DNNLError(operation: "engine_create", status: dnnl_runtime_error) }
            return engineHandle
        }
    }

    /// Executes a primitive and waits for it. Serialised: one stream, one primitive at a time.
    public func execute(_ primitive: dnnl_primitive_t, _ args: [(Int32, dnnl_memory_t)], _ what: @autoclosure () -> String = "primitive") throws {
        if let setupError { throw setupError }
        lock.lock(); defer { lock.unlock() }
        var execArgs = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
        try DNNLEngine.check(dnnl_primitive_execute(primitive, streamHandle, Int32(execArgs.count), &execArgs), "\(what()) execute")
        try DNNLEngine.check(dnnl_stream_wait(streamHandle), "\(what()) stream_wait")
    }

    /// Turns a oneDNN status into a thrown `DNNLError` naming the operation (and its shapes).
    public static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) throws {
        if status != dnnl_success { throw DNNLError(operation: what(), status: status) }
    }

    /// Describes a plain tensor.
    public static func memoryDesc(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map { Int64($0) }
        try check(dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, type, tag), "memory_desc_init \(dims)")
        return md
    }

    /// A plain layout given by its strides (in elements), e.g. a column slice of a row-major matrix.
    public static func memoryDesc(_ dims: [Int], _ type: dnnl_data_type_t, strides: [Int]) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        try check(dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), dims.map(Int64.init), type, strides.map(Int64.init)),
                  "memory_desc_init_by_strides \(dims)")
        return md
    }

    /// A memory object over caller-owned storage (the handle can be swapped per call).
    public func memory(_ md: dnnl_memory_desc_t, _ handle: UnsafeMutableRawPointer?) throws -> dnnl_memory_t {
        var md = md
        var m: dnnl_memory_t?
        try DNNLEngine.check(dnnl_memory_create(&m, &md, try engine, handle ?? UnsafeMutableRawPointer(bitPattern: 64)), "memory_create")
        guard let m else { throw DNNLError(operation: "memory_create", status: dnnl_runtime_error) }
        return m
    }

    /// Copies `src` laid out as `srcMD` into freshly allocated storage laid out as `dstMD`.
    public func reorder(_ src: UnsafeRawPointer, _ srcMD: dnnl_memory_desc_t, to dstMD: dnnl_memory_desc_t) throws -> AlignedBuffer {
        var size = dstMD
        let out = AlignedBuffer(byteCount: dnnl_memory_desc_get_size(&size))
        try execute(DNNLPrimitive(reorderFrom: srcMD, to: dstMD, "reorder"), from: src, srcMD, to: out.pointer, dstMD)
        return out
    }

    /// Runs a reorder primitive from `src` (laid out as `srcMD`) into `dst` (laid out as `dstMD`).
    public func execute(_ reorder: DNNLPrimitive, from src: UnsafeRawPointer, _ srcMD: dnnl_memory_desc_t,
                        to dst: UnsafeMutableRawPointer, _ dstMD: dnnl_memory_desc_t) throws {
        let s = try memory(srcMD, UnsafeMutableRawPointer(mutating: src))
        defer { dnnl_memory_destroy(s) }
        let d = try memory(dstMD, dst)
        defer { dnnl_memory_destroy(d) }
        try execute(reorder.primitive, [(DNNL_ARG_FROM, s), (DNNL_ARG_TO, d)], "reorder")
    }

    /// A memory descriptor the primitive chose (`dnnl_query_src_md`, `_weights_md`, `_dst_md`).
    public static func queriedMD(_ pd: dnnl_primitive_desc_t, _ what: dnnl_query_t, _ operation: @autoclosure () -> String) throws -> dnnl_memory_desc_t {
        guard let md = dnnl_primitive_desc_query_md(pd, what, 0) else {
            throw DNNLError(operation: "\(operation()) query_md", status: dnnl_runtime_error)
        }
        return md.pointee
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

/// A oneDNN primitive with its primitive descriptor, created together from an op descriptor and
/// destroyed together: the one place every kernel (fp32, bf16, int8, attention) makes primitives.
public final class DNNLPrimitive: @unchecked Sendable {
    public let pd: dnnl_primitive_desc_t
    public let primitive: dnnl_primitive_t

    /// `opDesc` points at an initialised op descriptor (matmul, convolution, ...); `attributes`
    /// adds post-ops, output scales or zero points; `what` names the operation and its shapes in errors.
    public convenience init(_ opDesc: UnsafeRawPointer, attributes: DNNLAttributes? = nil, _ what: @autoclosure () -> String) throws {
        var pd: dnnl_primitive_desc_t?
        let engine = try DNNLEngine.shared.engine
        if let attributes {
            try attributes.withHandle(what()) { attr in
                try DNNLEngine.check(dnnl_primitive_desc_create(&pd, opDesc, attr, engine, nil), "\(what()) primitive_desc_create")
            }
        } else {
            try DNNLEngine.check(dnnl_primitive_desc_create(&pd, opDesc, nil, engine, nil), "\(what()) primitive_desc_create")
        }
        try self.init(pd, "\(what()) primitive_desc_create", what())
    }

    /// The first implementation oneDNN offers for `opDesc` whose name `preferred` accepts, walking its
    /// list in oneDNN's order of preference; oneDNN's own first choice when none does.
    public convenience init(_ opDesc: UnsafeRawPointer, attributes: DNNLAttributes? = nil, preferring preferred: (String) -> Bool,
                            _ what: @autoclosure () -> String) throws {
        let engine = try DNNLEngine.shared.engine
        func walk(_ attr: dnnl_primitive_attr_t?) throws -> dnnl_primitive_desc_t? {
            var iterator: dnnl_primitive_desc_iterator_t?
            try DNNLEngine.check(dnnl_primitive_desc_iterator_create(&iterator, opDesc, attr, engine, nil), "\(what()) iterator_create")
            guard let iterator else { return nil }
            defer { dnnl_primitive_desc_iterator_destroy(iterator) }
            var first: dnnl_primitive_desc_t?
            repeat {
                guard let candidate = dnnl_primitive_desc_iterator_fetch(iterator) else { continue }  // a copy we own
                if preferred(DNNLEngine.implementationName(candidate)) {
                    if let first { dnnl_primitive_desc_destroy(first) }
                    return candidate
                }
                if first == nil { first = candidate } else { dnnl_primitive_desc_destroy(candidate) }
            } while dnnl_primitive_desc_iterator_next(iterator) == dnnl_success
            return first
        }
        let pd = try attributes.map { try $0.withHandle(what()) { try walk($0) } } ?? walk(nil)
        try self.init(pd, "\(what()) primitive_desc_iterator", what())
    }

    /// A reorder from one layout to another (both on the CPU engine).
    public convenience init(reorderFrom src: dnnl_memory_desc_t, to dst: dnnl_memory_desc_t, _ what: @autoclosure () -> String) throws {
        var (s, d) = (src, dst)
        var pd: dnnl_primitive_desc_t?
        let engine = try DNNLEngine.shared.engine
        try DNNLEngine.check(dnnl_reorder_primitive_desc_create(&pd, &s, engine, &d, engine, nil), "\(what()) reorder_primitive_desc_create")
        try self.init(pd, "\(what()) reorder_primitive_desc_create", "\(what()) reorder")
    }

    /// Takes a created primitive descriptor (nil: `created` failed) and makes its primitive; on
    /// failure the descriptor is destroyed and the error names `what`.
    private init(_ pd: dnnl_primitive_desc_t?, _ created: @autoclosure () -> String, _ what: @autoclosure () -> String) throws {
        guard let pd else { throw DNNLError(operation: created(), status: dnnl_runtime_error) }
        var prim: dnnl_primitive_t?
        let status = dnnl_primitive_create(&prim, pd)
        guard status == dnnl_success, let prim else {
            dnnl_primitive_desc_destroy(pd)
            throw DNNLError(operation: "\(what()) primitive_create", status: status)
        }
        self.pd = pd
        primitive = prim
    }

    deinit { dnnl_primitive_destroy(primitive); dnnl_primitive_desc_destroy(pd) }
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
    /// libgomp's threads spin for a while after every parallel region by default. PASSIVE puts them
    /// to sleep at once: it spares the cores of a shared machine, and it was needed while our own
    /// row-parallel passes ran on a second pool (Dispatch) that spinning threads starved (17 s vs
    /// 1.3 s for two tiny-model INT8 images on 2 busy cores, session 6). Measured again in session 13
    /// (Sapphire Rapids, 2 vCPUs), that no longer reproduces on either pool (10 tiny W8A8 images:
    /// 1.2-1.6 s under PASSIVE, 300k spins and ACTIVE alike), and those passes now run on the OpenMP
    /// team itself (`RowParallel`); the full-size bf16 UNet showed no consistent gain from spinning
    /// (3 alternated rounds within the host's noise), so PASSIVE stays.
    /// libgomp reads OMP_WAIT_POLICY once, when it loads, before any Swift code runs, so the only way
    /// to set it for this process is to set it and exec the same program again. Returns (continuing
    /// in this process) when it is already set, when the user chose a policy, or when the exec fails.
    public static func ensurePassiveOpenMPWait() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    nonisolated(unsafe) private static var configured = false

    public static func configure() {
        if configured { return }
        configured = true
        // Under glibc malloc (library users; the mixdq tool links tcmalloc, see MemoryAllocator):
        // large tensors come and go every layer; serve them from mmap so freed memory returns to
        // the system at once (glibc's adaptive threshold would otherwise keep them on the heap,
        // inflating the resident size of multi-GB models). tcmalloc ignores mallopt.
        mdq_tune_allocator(256 * 1024, 1024 * 1024)
    }
}
