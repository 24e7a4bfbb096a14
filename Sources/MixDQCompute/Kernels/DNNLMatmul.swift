import CDNNL
import CKernels
import Foundation

/// `y = x W^T + b` on a oneDNN matmul with weights packed once at load time: bf16 (bf16 inputs and
/// weights, fp32 accumulation and output; half the weight memory) or fp32.
///
/// The fp32 copy of the weight is not kept.
public final class DNNLMatmul: LinearKernel, @unchecked Sendable {
    public let inFeatures: Int, outFeatures: Int
    public let precision: Precision
    /// How many slices the reduction runs in (1: one matmul); see `reductionSlices`.
    public let slices: Int
    private var sliceDepth: Int { inFeatures / slices }
    private var dataType: dnnl_data_type_t { precision == .bf16 ? dnnl_bf16 : dnnl_f32 }
    private var elementBytes: Int { precision == .bf16 ? 2 : 4 }
    private let bias: Tensor?
    /// The packed weight of every slice, one after the other (`sliceBytes` each).
    private var packedWeight: AlignedBuffer?
    private var packedWeightMD: dnnl_memory_desc_t?
    private var sliceBytes = 0
    private var pendingWeight: Tensor?
    private var primitives: [Int: Compiled] = [:]

    /// The primitives for one row count: the first slice's matmul (with the bias), the later slices'
    /// (summed into the output), and the reorder that lays the input out slice by slice.
    private struct Compiled {
        let first: DNNLPrimitive
        let rest: DNNLPrimitive?
        let slicer: (primitive: DNNLPrimitive, from: dnnl_memory_desc_t, to: dnnl_memory_desc_t)?
    }

    /// oneDNN 2.6's AMX brgemm streams a whole reduction panel per output block, and for long
    /// reductions its operands no longer stay in L2. Cut into slices of at most 640 (a multiple of 32,
    /// the tiles' bf16 depth) that are summed into the output (a sum post-op), SDXL's `ff.net.2` at
    /// 512x512 (256x5120x1280) took 0.65-0.78x and cross-attention's `to_k`/`to_v` (77x2048x1280)
    /// 0.49-0.85x the time of one matmul; 1024x2560x640 was even, 77x2048x640 1.0-1.1x, and the
    /// 1280-deep 256x1280x1280 0.87-1.41x, so reductions shorter than 2048 stay whole (Sapphire Rapids,
    /// 2 cores, alternated, the input's slicing copy included). Only where K >= N: every slice reads
    /// the output back, which for wide outputs costs more than it saves. `MIXDQ_BF16_SLICES=off`
    /// keeps one matmul.
    public static func reductionSlices(inFeatures k: Int, outFeatures n: Int, precision: Precision) -> Int {
        let widest = 640
        guard precision == .bf16, k >= 2048, k >= n else { return 1 }
        for count in stride(from: (k + widest - 1) / widest, through: k / 32, by: 1) where k % count == 0 && (k / count) % 32 == 0 {
            return count
        }
        return 1
    }

    /// Whether bf16 matmuls here slice their reductions: measured on AMX only, so only where AMX runs
    /// (granted, and allowed by the ISA ceiling), and not under `MIXDQ_BF16_SLICES=off`.
    public static let reductionSlicingApplies = ProcessInfo.processInfo.environment["MIXDQ_BF16_SLICES"] != "off"
        && mdq_cpu_has_amx_bf16() != 0

    public init(weight: Tensor, bias: Tensor?, precision: Precision = .bf16) throws {
        guard weight.rank == 2 else { throw DNNLError(operation: "linear weight must be [out, in], got \(weight.shape)", status: dnnl_invalid_arguments) }
        self.precision = precision
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        slices = Self.reductionSlicingApplies ? Self.reductionSlices(inFeatures: inFeatures, outFeatures: outFeatures, precision: precision) : 1
        self.bias = bias
        pendingWeight = weight
        // Pack right away with a nominal row count so the fp32 weight can be dropped now.
        _ = try compiled(rows: 256)
    }

    private func compiled(rows m: Int) throws -> Compiled {
        if let c = primitives[m] { return c }
        let k = sliceDepth
        let what = "matmul \(m)x\(inFeatures)x\(outFeatures) \(precision)" + (slices > 1 ? " in \(slices) slices" : "")
        var src = try DNNLEngine.memoryDesc([m, k], dataType, dnnl_ab)
        var wmd = try packedWeightMD ?? DNNLEngine.memoryDesc([k, outFeatures], dataType, dnnl_format_tag_any)
        var bmd = try DNNLEngine.memoryDesc([1, outFeatures], dnnl_f32, dnnl_ab)
        var dst = try DNNLEngine.memoryDesc([m, outFeatures], dnnl_f32, dnnl_ab)
        var desc = dnnl_matmul_desc_t()
        let hasBias = bias != nil
        try withUnsafePointer(to: &bmd) { bp in
            try DNNLEngine.check(dnnl_matmul_desc_init(&desc, &src, &wmd, hasBias ? bp : nil, &dst), "\(what) desc_init")
        }
        let first = try DNNLPrimitive(&desc, what)
        if packedWeightMD == nil, let w = pendingWeight {
            try pack(w, as: DNNLEngine.queriedMD(first.pd, dnnl_query_weights_md, what))
        }
        var rest: DNNLPrimitive?
        var slicer: (primitive: DNNLPrimitive, from: dnnl_memory_desc_t, to: dnnl_memory_desc_t)?
        if slices > 1 {
            // The later slices read the same packed layout as the first.
            guard var packed = packedWeightMD else { throw DNNLError(operation: "\(what): weights not packed", status: dnnl_runtime_error) }
            var restDesc = dnnl_matmul_desc_t()
            try DNNLEngine.check(dnnl_matmul_desc_init(&restDesc, &src, &packed, nil, &dst), "\(what) desc_init")
            rest = try DNNLPrimitive(&restDesc, attributes: DNNLAttributes(postOps: [.sum(scale: 1)]), what)
            // [m, K] row-major viewed as [slices, m, K/slices], copied to that shape dense.
            let from = try DNNLEngine.memoryDesc([slices, m, k], dataType, strides: [k, inFeatures, 1])
            let to = try DNNLEngine.memoryDesc([slices, m, k], dataType, dnnl_abc)
            slicer = (try DNNLPrimitive(reorderFrom: from, to: to, "\(what) slicing"), from, to)
        }
        let c = Compiled(first: first, rest: rest, slicer: slicer)
        primitives[m] = c
        return c
    }

    /// Reorders W (`[out, in]` row-major) slice by slice into the layout the primitive chose.
    private func pack(_ w: Tensor, as want: dnnl_memory_desc_t) throws {
        let k = sliceDepth
        var size = want
        sliceBytes = dnnl_memory_desc_get_size(&size)
        let packed = AlignedBuffer(byteCount: sliceBytes * slices)
        // W is [out, in] row-major: the [in, out] matrix with strides (1, in); a slice starts k columns on.
        let sliceMD = try DNNLEngine.memoryDesc([k, outFeatures], dataType, strides: [1, inFeatures])
        let reorder = try DNNLPrimitive(reorderFrom: sliceMD, to: want, "matmul \(inFeatures)x\(outFeatures) weight packing")
        func packSlices(_ source: UnsafeRawPointer) throws {
            for s in 0..<slices {
                try DNNLEngine.shared.execute(reorder, from: source + s * k * elementBytes, sliceMD,
                                              to: packed.pointer + s * sliceBytes, want)
            }
        }
        if precision == .bf16 {
            let staged = AlignedBuffer(byteCount: w.count * 2)
            mdq_f32_to_bf16(w.data, staged.pointer.assumingMemoryBound(to: UInt16.self), w.count)
            try packSlices(staged.pointer)
        } else {
            try packSlices(w.data)
        }
        packedWeight = packed
        packedWeightMD = want
        pendingWeight = nil
    }

    public func forward(_ x: Tensor) throws -> Tensor {
        try checkInput(x.shape)
        guard precision == .bf16 else { return try run(UnsafeMutableRawPointer(x.data), outputShape: outputShape(x.shape)) }
        let staged = AlignedBuffer(byteCount: max(x.count, 1) * 2)
        Ops.convertToBF16(x.data, staged.pointer.assumingMemoryBound(to: UInt16.self), count: x.count)
        return try withExtendedLifetime(staged) { try run(staged.pointer, outputShape: outputShape(x.shape)) }
    }

    public var takesBF16Input: Bool { precision == .bf16 }

    /// The same bits as `forward` of the fp32 input that `x` rounds.
    public func forward(bf16 x: BF16Activation) throws -> Tensor {
        try checkInput(x.shape)
        guard precision == .bf16 else {
            throw DNNLError(operation: "matmul \(inFeatures)x\(outFeatures) fp32 given a bf16 input", status: dnnl_invalid_arguments)
        }
        return try withExtendedLifetime(x) { try run(x.buffer.pointer, outputShape: outputShape(x.shape)) }
    }

    /// bf16: GEGLU is rounded to bf16 as it is computed (`mdq_geglu_bf16`), so its fp32 output is
    /// never written; the same bits as GEGLU, then `forward`, then the residual add.
    public func forward(gegluOf proj: Tensor, adding residual: Tensor?) throws -> Tensor {
        guard precision == .bf16 else { return try forwardUnfused(gegluOf: proj, adding: residual) }
        let inner = inFeatures
        guard proj.shape.last == 2 * inner else { throw LinearShapeError(expected: 2 * inner, got: proj.shape) }
        let rows = proj.count / (2 * inner)
        let staged = AlignedBuffer(byteCount: max(rows * inner, 1) * 2)
        let dst = staged.pointer.assumingMemoryBound(to: UInt16.self)
        let status = FirstStatus()
        RowParallel.run(rows: rows, rowLength: 2 * inner) { r in
            status.record(mdq_geglu_bf16(proj.data + r.lowerBound * 2 * inner, dst + r.lowerBound * inner, r.count, inner))
        }
        if status.value != 0 { throw DNNLError(operation: "GEGLU into bf16 for matmul \(rows)x\(inFeatures)x\(outFeatures): out of memory", status: dnnl_out_of_memory) }
        let y = try withExtendedLifetime(staged) { try run(staged.pointer, outputShape: outputShape(proj.shape)) }
        return try addResidual(residual, to: y)
    }

    private func checkInput(_ shape: [Int]) throws {
        guard shape.last == inFeatures else {
            throw DNNLError(operation: "linear expects last dimension \(inFeatures), got \(shape)", status: dnnl_invalid_arguments)
        }
    }

    private func outputShape(_ input: [Int]) -> [Int] { Array(input.dropLast()) + [outFeatures] }

    /// The matmul of `src` (rows of `inFeatures`, in this kernel's data type) into a new fp32 tensor.
    private func run(_ src: UnsafeMutableRawPointer, outputShape: [Int]) throws -> Tensor {
        let y = Tensor(uninitializedShape: outputShape)
        let m = y.count / outFeatures
        guard m > 0 else { return y }
        let c = try compiled(rows: m)
        FLOPCounter.add(macs: m * inFeatures * outFeatures)
        let engine = DNNLEngine.shared
        let what = "matmul \(m)x\(inFeatures)x\(outFeatures)"
        guard let packedWeightMD, let packedWeight else {
            throw DNNLError(operation: "\(what): weights not packed", status: dnnl_runtime_error)
        }
        var input = src
        var sliced: AlignedBuffer?
        if let slicer = c.slicer {
            let buffer = AlignedBuffer(byteCount: m * inFeatures * elementBytes)
            try engine.execute(slicer.primitive, from: src, slicer.from, to: buffer.pointer, slicer.to)
            input = buffer.pointer
            sliced = buffer
        }
        let sliceInputBytes = m * sliceDepth * elementBytes
        try withExtendedLifetime(sliced) {
            for s in 0..<slices {
                let primitive = s == 0 ? c.first : (c.rest ?? c.first)
                var mems: [dnnl_memory_t] = []
                defer { mems.forEach { dnnl_memory_destroy($0) } }
                let sm = try engine.memory(DNNLEngine.queriedMD(primitive.pd, dnnl_query_src_md, "matmul"), input + s * sliceInputBytes); mems.append(sm)
                let wm = try engine.memory(packedWeightMD, packedWeight.pointer + s * sliceBytes); mems.append(wm)
                let dm = try engine.memory(DNNLEngine.queriedMD(primitive.pd, dnnl_query_dst_md, "matmul"), y.data); mems.append(dm)
                var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, sm), (DNNL_ARG_WEIGHTS, wm), (DNNL_ARG_DST, dm)]
                if s == 0, let bias {
                    let bm = try engine.memory(DNNLEngine.memoryDesc([1, outFeatures], dnnl_f32, dnnl_ab), bias.data); mems.append(bm)
                    args.append((DNNL_ARG_BIAS, bm))
                }
                try engine.execute(primitive.primitive, args, slices > 1 ? "\(what) slice \(s)" : what)
            }
        }
        return y
    }
}
