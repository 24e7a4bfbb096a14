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
    private var primitives: [Int: Compiled] = [:]

    private final class Compiled {
        let pd: dnnl_primitive_desc_t
        let primitive: dnnl_primitive_t
        init(pd: dnnl_primitive_desc_t, primitive: dnnl_primitive_t) { self.pd = pd; self.primitive = primitive }
        deinit { dnnl_primitive_destroy(primitive); dnnl_primitive_desc_destroy(pd) }
    }

    public init(weight: Tensor, bias: Tensor?, precision: Precision = .bf16) {
        precondition(weight.rank == 2, "linear weight must be [out, in], got \(weight.shape)")
        self.precision = precision
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        self.bias = bias
        pendingWeight = weight
        // Pack right away with a nominal row count so the fp32 weight can be dropped now.
        _ = compiled(rows: 256)
    }

    private func compiled(rows m: Int) -> Compiled {
        if let c = primitives[m] { return c }
        var src = DNNLEngine.memoryDesc([m, inFeatures], dataType, dnnl_ab)
        var wmd = packedWeightMD ?? DNNLEngine.memoryDesc([inFeatures, outFeatures], dataType, dnnl_format_tag_any)
        var bmd = DNNLEngine.memoryDesc([1, outFeatures], dnnl_f32, dnnl_ab)
        var dst = DNNLEngine.memoryDesc([m, outFeatures], dnnl_f32, dnnl_ab)
        var desc = dnnl_matmul_desc_t()
        let hasBias = bias != nil
        withUnsafePointer(to: &bmd) { bp in
            DNNLEngine.check(dnnl_matmul_desc_init(&desc, &src, &wmd, hasBias ? bp : nil, &dst), "matmul_desc_init")
        }
        var pd: dnnl_primitive_desc_t?
        DNNLEngine.check(dnnl_primitive_desc_create(&pd, &desc, nil, DNNLEngine.shared.engine, nil),
                         "matmul primitive_desc_create \(m)x\(inFeatures)x\(outFeatures)")
        if packedWeightMD == nil, let w = pendingWeight {
            let want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)!.pointee
            // W is [out, in] row-major, i.e. the [in, out] matrix in "ba" order.
            let userMD = DNNLEngine.memoryDesc([inFeatures, outFeatures], dataType, dnnl_ba)
            if precision == .bf16 {
                let staged = AlignedBuffer(byteCount: w.count * 2)
                mdq_f32_to_bf16(w.data, staged.pointer.assumingMemoryBound(to: UInt16.self), w.count)
                packedWeight = DNNLEngine.shared.reorder(staged.pointer, userMD, to: want)
            } else {
                packedWeight = DNNLEngine.shared.reorder(w.data, userMD, to: want)
            }
            packedWeightMD = want
            pendingWeight = nil
        }
        var prim: dnnl_primitive_t?
        DNNLEngine.check(dnnl_primitive_create(&prim, pd), "matmul primitive_create")
        let c = Compiled(pd: pd!, primitive: prim!)
        primitives[m] = c
        return c
    }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "linear expects last dimension \(inFeatures), got \(x.shape)")
        let m = x.count / inFeatures
        let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outFeatures])
        guard m > 0 else { return y }
        let c = compiled(rows: m)
        FLOPCounter.add(macs: m * inFeatures * outFeatures)
        var staged: AlignedBuffer?
        var src = UnsafeMutableRawPointer(x.data)
        if precision == .bf16 {
            staged = AlignedBuffer(byteCount: x.count * 2)
            mdq_f32_to_bf16(x.data, staged!.pointer.assumingMemoryBound(to: UInt16.self), x.count)
            src = staged!.pointer
        }
        let engine = DNNLEngine.shared
        let s = engine.memory(dnnl_primitive_desc_query_md(c.pd, dnnl_query_src_md, 0)!.pointee, src)
        let w = engine.memory(packedWeightMD!, packedWeight!.pointer)
        let d = engine.memory(dnnl_primitive_desc_query_md(c.pd, dnnl_query_dst_md, 0)!.pointee, y.data)
        var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, s), (DNNL_ARG_WEIGHTS, w), (DNNL_ARG_DST, d)]
        var b: dnnl_memory_t?
        if let bias {
            b = engine.memory(DNNLEngine.memoryDesc([1, outFeatures], dnnl_f32, dnnl_ab), bias.data)
            args.append((DNNL_ARG_BIAS, b!))
        }
        engine.execute(c.primitive, args)
        dnnl_memory_destroy(s); dnnl_memory_destroy(w); dnnl_memory_destroy(d)
        if let b { dnnl_memory_destroy(b) }
        withExtendedLifetime(staged) {}
        return y
    }
}
