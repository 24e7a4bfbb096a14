import CDNNL
import CKernels

/// Exact integer products on a oneDNN matmul: `c[m, n] = Σ_k a[m, k] · w[n, k]` with `a` u8 activation
/// codes `[rows, K]`, `w` s8 weight codes `[N, K]` (a Linear's `[out, in]`) and `c` s32 `[rows, N]`.
///
/// The weights are reordered once, at construction, into the layout oneDNN picks; the s8 codes
/// passed in are not kept. On CPUs where oneDNN has no VNNI, and for weight codes beyond [-64, 64],
/// the activations go through the 7-bit split (`Int8ActivationSplit`), so the result equals
/// `mdq_gemm_u8s8s32_ref` on every CPU.
public final class DNNLInt8Matmul: @unchecked Sendable {
    public let inFeatures: Int, outFeatures: Int
    /// Whether each call runs the hi/lo halves of the codes (CPUs without VNNI).
    public let splitsActivations: Bool
    /// Σ_k w[n, k] per output: the zero-point correction of the dequantization epilogue.
    public let weightSums: [Int32]
    /// Bytes of the reordered weight codes this kernel holds (what benchmarks report as resident).
    public var packedWeightBytes: Int { packedWeight.byteCount }
    private let packedWeight: AlignedBuffer
    private let packedWeightMD: dnnl_memory_desc_t
    private var primitives: [Int: DNNLPrimitive] = [:]


    /// `splitActivations` nil: decided by the CPU and the codes (`Int8ActivationSplit.needed`); tests force either path.
    public init(weightCodes: [Int8], outFeatures: Int, inFeatures: Int, splitActivations: Bool? = nil) throws {
        guard outFeatures > 0, inFeatures > 0, weightCodes.count == outFeatures * inFeatures else {
            throw DNNLError(operation: "int8 matmul weights: \(weightCodes.count) codes for [\(outFeatures), \(inFeatures)]",
                            status: dnnl_invalid_arguments)
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        splitsActivations = splitActivations ?? Int8ActivationSplit.needed(weightCodes: weightCodes)
        weightSums = (0..<outFeatures).map { n in
            weightCodes[(n * inFeatures)..<((n + 1) * inFeatures)].reduce(Int32(0)) { $0 &+ Int32($1) }
        }
        // Compile once for a nominal row count to learn the weight layout oneDNN wants, and pack now.
        let nominalRows = 256
        let first = try Self.compile(rows: nominalRows, inFeatures: inFeatures, outFeatures: outFeatures,
                                     weightMD: DNNLEngine.memoryDesc([inFeatures, outFeatures], dnnl_s8, dnnl_format_tag_any))
        let want = try DNNLEngine.queriedMD(first.pd, dnnl_query_weights_md, "int8 matmul \(inFeatures)x\(outFeatures)")
        // w is [N, K] row-major, i.e. the [K, N] matrix in "ba" order.
        let userMD = try DNNLEngine.memoryDesc([inFeatures, outFeatures], dnnl_s8, dnnl_ba)
        packedWeight = try weightCodes.withUnsafeBytes { codes in
            guard let base = codes.baseAddress else { throw DNNLError(operation: "int8 matmul weights: empty", status: dnnl_invalid_arguments) }
            return try DNNLEngine.shared.reorder(base, userMD, to: want)
        }
        packedWeightMD = want
        primitives[nominalRows] = first
    }

    private static func compile(rows m: Int, inFeatures k: Int, outFeatures n: Int, weightMD: dnnl_memory_desc_t) throws -> DNNLPrimitive {
        let what = "int8 matmul \(m)x\(k)x\(n)"
        var src = try DNNLEngine.memoryDesc([m, k], dnnl_u8, dnnl_ab)
        var wmd = weightMD
        var dst = try DNNLEngine.memoryDesc([m, n], dnnl_s32, dnnl_ab)
        var desc = dnnl_matmul_desc_t()
        try DNNLEngine.check(dnnl_matmul_desc_init(&desc, &src, &wmd, nil, &dst), "\(what) desc_init")
        return try DNNLPrimitive(&desc, what)
    }

    private func compiled(rows m: Int) throws -> DNNLPrimitive {
        if let c = primitives[m] { return c }
        let c = try Self.compile(rows: m, inFeatures: inFeatures, outFeatures: outFeatures, weightMD: packedWeightMD)
        primitives[m] = c
        return c
    }

    /// Name of the oneDNN implementation for this row count.
    public func implementation(rows: Int) throws -> String {
        DNNLEngine.implementationName(try compiled(rows: rows).pd)
    }

    /// `c = a · wᵀ`: `a` holds `rows x inFeatures` u8 codes, `c` receives `rows x outFeatures` s32.
    public func accumulate(_ a: UnsafePointer<UInt8>, rows m: Int, into c: UnsafeMutablePointer<Int32>) throws {
        guard m > 0 else { return }
        FLOPCounter.add(macs: m * inFeatures * outFeatures)
        if !splitsActivations {
            try run(a, rows: m, into: c)
            return
        }
        // Two calls on the same packed weights: acc_lo straight into c, acc_hi into scratch, then
        // c = 128 acc_hi + acc_lo in place (scratch of m x N, not 2m x N as one stacked call would need).
        let count = m * inFeatures
        let halves = AlignedBuffer(byteCount: 2 * count)
        let hi = halves.pointer.assumingMemoryBound(to: UInt8.self)
        mdq_split_u8_hi_lo(a, hi, hi + count, count)
        let products = AlignedBuffer(byteCount: m * outFeatures * MemoryLayout<Int32>.stride)
        let accHi = products.pointer.assumingMemoryBound(to: Int32.self)
        try run(hi, rows: m, into: accHi)
        try run(hi + count, rows: m, into: c)
        mdq_combine_hi_lo_s32(accHi, c, c, m * outFeatures)
    }

    private func run(_ a: UnsafePointer<UInt8>, rows m: Int, into c: UnsafeMutablePointer<Int32>) throws {
        let compiled = try compiled(rows: m)
        let what = "int8 matmul \(m)x\(inFeatures)x\(outFeatures)"
        let engine = DNNLEngine.shared
        var mems: [dnnl_memory_t] = []
        defer { mems.forEach { dnnl_memory_destroy($0) } }
        let s = try engine.memory(DNNLEngine.queriedMD(compiled.pd, dnnl_query_src_md, what), UnsafeMutableRawPointer(mutating: a))
        mems.append(s)
        let w = try engine.memory(packedWeightMD, packedWeight.pointer); mems.append(w)
        let d = try engine.memory(DNNLEngine.queriedMD(compiled.pd, dnnl_query_dst_md, what), c); mems.append(d)
        try engine.execute(compiled.primitive, [(DNNL_ARG_SRC, s), (DNNL_ARG_WEIGHTS, w), (DNNL_ARG_DST, d)], what)
    }
}
