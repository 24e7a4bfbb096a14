import CDNNL
import CKernels

/// Exact integer products on a oneDNN matmul: `c[m, n] = Σ_k a[m, k] · w[n, k]` with `a` u8 activation
/// codes `[rows, K]`, `w` s8 weight codes `[N, K]` (a Linear's `[out, in]`) and `c` s32 `[rows, N]`.
///
/// The weights are reordered once, at construction, into the layout oneDNN picks; the s8 codes
/// passed in are not kept. With `restBits` 4 or 2 that layout rests packed (`Int8WeightsAtRest`) and
/// each call unpacks it into scratch. On CPUs where oneDNN has no VNNI, and for weight codes beyond
/// [-64, 64], the activations go through the 7-bit split (`Int8ActivationSplit`), so the result equals
/// `mdq_gemm_u8s8s32_ref` on every CPU.
public final class DNNLInt8Matmul: @unchecked Sendable {
    public let inFeatures: Int, outFeatures: Int
    /// Whether each call runs the hi/lo halves of the codes (CPUs without VNNI).
    public let splitsActivations: Bool
    /// Σ_k w[n, k] per output: the zero-point correction of the dequantization epilogue.
    public let weightSums: [Int32]
    private let weights: Int8WeightsAtRest
    private var primitives: [Int: DNNLPrimitive] = [:]

    /// Bit width the weights rest at (2, 4 or 8).
    public var restBits: Int { weights.restBits }
    /// Bytes the weights occupy between calls (oneDNN's layout, packed at `restBits`).
    public var weightBytesAtRest: Int { weights.bytesAtRest }
    /// Whether packed weights unpack straight into oneDNN's layout (no per-call reorder).
    public var unpacksIntoPrimitiveLayout: Bool { weights.packsPrimitiveLayout }

    /// `restBits` 2, 4 or 8: the width the weights rest at (codes must fit it; errors name `name`).
    /// `splitActivations` nil: decided by the CPU and the codes (`Int8ActivationSplit.needed`); tests force either path.
    /// `packPrimitiveLayout` false: packed weights keep their plain order and are reordered per call (tests).
    public init(weightCodes: [Int8], outFeatures: Int, inFeatures: Int, restBits: Int = 8, splitActivations: Bool? = nil,
                name: String? = nil, packPrimitiveLayout: Bool = true) throws {
        guard outFeatures > 0, inFeatures > 0, weightCodes.count == outFeatures * inFeatures else {
            throw DNNLError(operation: "int8 matmul weights: \(weightCodes.count) codes for [\(outFeatures), \(inFeatures)]",
                            status: dnnl_invalid_arguments)
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        splitsActivations = splitActivations ?? Int8ActivationSplit.needed(weightCodes: weightCodes)
        weightSums = Int8WeightSums.perOutput(weightCodes, outputs: outFeatures, rowLength: inFeatures)
        // Compile once for a nominal row count to learn the weight layout oneDNN wants, and pack now.
        let nominalRows = 256
        let first = try Self.compile(rows: nominalRows, inFeatures: inFeatures, outFeatures: outFeatures,
                                     weightMD: DNNLEngine.memoryDesc([inFeatures, outFeatures], dnnl_s8, dnnl_format_tag_any))
        let want = try DNNLEngine.queriedMD(first.pd, dnnl_query_weights_md, "int8 matmul \(inFeatures)x\(outFeatures)")
        // w is [N, K] row-major, i.e. the [K, N] matrix in "ba" order.
        let userMD = try DNNLEngine.memoryDesc([inFeatures, outFeatures], dnnl_s8, dnnl_ba)
        weights = try Int8WeightsAtRest(codes: weightCodes, plainMD: userMD, layoutMD: want, restBits: restBits,
                                        name: name ?? "int8 matmul [\(outFeatures), \(inFeatures)]", packPrimitiveLayout: packPrimitiveLayout)
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
        let c = try Self.compile(rows: m, inFeatures: inFeatures, outFeatures: outFeatures, weightMD: weights.layoutMD)
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
        try weights.withLayoutWeights { w in
            if !splitsActivations {
                try run(a, rows: m, weights: w, into: c)
                return
            }
            // Two calls on the same weights: acc_lo straight into c, acc_hi into scratch, then
            // c = 128 acc_hi + acc_lo in place (scratch of m x N, not 2m x N as one stacked call would need).
            let count = m * inFeatures
            let halves = AlignedBuffer(byteCount: 2 * count)
            let hi = halves.pointer.assumingMemoryBound(to: UInt8.self)
            mdq_split_u8_hi_lo(a, hi, hi + count, count)
            let products = AlignedBuffer(byteCount: m * outFeatures * MemoryLayout<Int32>.stride)
            let accHi = products.pointer.assumingMemoryBound(to: Int32.self)
            try run(hi, rows: m, weights: w, into: accHi)
            try run(hi + count, rows: m, weights: w, into: c)
            mdq_combine_hi_lo_s32(accHi, c, c, m * outFeatures)
        }
    }

    private func run(_ a: UnsafePointer<UInt8>, rows m: Int, weights: UnsafeMutableRawPointer, into c: UnsafeMutablePointer<Int32>) throws {
        let compiled = try compiled(rows: m)
        let what = "int8 matmul \(m)x\(inFeatures)x\(outFeatures)"
        let engine = DNNLEngine.shared
        var mems: [dnnl_memory_t] = []
        defer { mems.forEach { dnnl_memory_destroy($0) } }
        let s = try engine.memory(DNNLEngine.queriedMD(compiled.pd, dnnl_query_src_md, what), UnsafeMutableRawPointer(mutating: a))
        mems.append(s)
        let w = try engine.memory(self.weights.layoutMD, weights); mems.append(w)
        let d = try engine.memory(DNNLEngine.queriedMD(compiled.pd, dnnl_query_dst_md, what), c); mems.append(d)
        try engine.execute(compiled.primitive, [(DNNL_ARG_SRC, s), (DNNL_ARG_WEIGHTS, w), (DNNL_ARG_DST, d)], what)
    }
}
