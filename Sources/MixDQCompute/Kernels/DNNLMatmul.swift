import CDNNL
import CKernels

/// `y = x W^T + b` on a oneDNN matmul with weights packed once at load time: bf16 (bf16 inputs and
/// weights, fp32 accumulation and output; half the weight memory) or fp32.
///
/// The fp32 copy of the weight is not kept.
public final class DNNLMatmul: LinearKernel, @unchecked Sendable {
    public let inFeatures: Int, outFeatures: Int
    public let precision: Precision
    private var dataType: dnnl_data_type_t { precision == .bf16 ? dnnl_bf16 : dnnl_f32 }
    private let bias: Tensor?
    private var packedWeight: AlignedBuffer?
    private var packedWeightMD: dnnl_memory_desc_t?
    private var pendingWeight: Tensor?
    private var primitives: [Int: DNNLPrimitive] = [:]


    public init(weight: Tensor, bias: Tensor?, precision: Precision = .bf16) throws {
        guard weight.rank == 2 else { throw DNNLError(operation: "linear weight must be [out, in], got \(weight.shape)", status: dnnl_invalid_arguments) }
        self.precision = precision
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        self.bias = bias
        pendingWeight = weight
        // Pack right away with a nominal row count so the fp32 weight can be dropped now.
        _ = try compiled(rows: 256)
    }

    private func compiled(rows m: Int) throws -> DNNLPrimitive {
        if let c = primitives[m] { return c }
        let what = "matmul \(m)x\(inFeatures)x\(outFeatures) \(precision)"
        var src = try DNNLEngine.memoryDesc([m, inFeatures], dataType, dnnl_ab)
        var wmd = try packedWeightMD ?? DNNLEngine.memoryDesc([inFeatures, outFeatures], dataType, dnnl_format_tag_any)
        var bmd = try DNNLEngine.memoryDesc([1, outFeatures], dnnl_f32, dnnl_ab)
        var dst = try DNNLEngine.memoryDesc([m, outFeatures], dnnl_f32, dnnl_ab)
        var desc = dnnl_matmul_desc_t()
        let hasBias = bias != nil
        try withUnsafePointer(to: &bmd) { bp in
            try DNNLEngine.check(dnnl_matmul_desc_init(&desc, &src, &wmd, hasBias ? bp : nil, &dst), "\(what) desc_init")
        }
        let compiled = try DNNLPrimitive(&desc, what)
        if packedWeightMD == nil, let w = pendingWeight {
            let want = try DNNLEngine.queriedMD(compiled.pd, dnnl_query_weights_md, what)
            // W is [out, in] row-major, i.e. the [in, out] matrix in "ba" order.
            let userMD = try DNNLEngine.memoryDesc([inFeatures, outFeatures], dataType, dnnl_ba)
            if precision == .bf16 {
                let staged = AlignedBuffer(byteCount: w.count * 2)
                mdq_f32_to_bf16(w.data, staged.pointer.assumingMemoryBound(to: UInt16.self), w.count)
                packedWeight = try DNNLEngine.shared.reorder(staged.pointer, userMD, to: want)
            } else {
                packedWeight = try DNNLEngine.shared.reorder(w.data, userMD, to: want)
            }
            packedWeightMD = want
            pendingWeight = nil
        }
        primitives[m] = compiled
        return compiled
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
        guard let packedWeightMD, let packedWeight else {
            throw DNNLError(operation: "matmul \(m)x\(inFeatures)x\(outFeatures): weights not packed", status: dnnl_runtime_error)
        }
        var mems: [dnnl_memory_t] = []
        defer { mems.forEach { dnnl_memory_destroy($0) } }
        let s = try engine.memory(DNNLEngine.queriedMD(c.pd, dnnl_query_src_md, "matmul"), src); mems.append(s)
        let w = try engine.memory(packedWeightMD, packedWeight.pointer); mems.append(w)
        let d = try engine.memory(DNNLEngine.queriedMD(c.pd, dnnl_query_dst_md, "matmul"), y.data); mems.append(d)
        var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, s), (DNNL_ARG_WEIGHTS, w), (DNNL_ARG_DST, d)]
        if let bias {
            let b = try engine.memory(DNNLEngine.memoryDesc([1, outFeatures], dnnl_f32, dnnl_ab), bias.data); mems.append(b)
            args.append((DNNL_ARG_BIAS, b))
        }
        try engine.execute(c.primitive, args, "matmul \(m)x\(inFeatures)x\(outFeatures)")
        return y
    }
}
