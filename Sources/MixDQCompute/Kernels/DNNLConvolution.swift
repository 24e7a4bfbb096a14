import CDNNL
import CKernels

/// A 2-D convolution on NHWC feature maps run by oneDNN (fp32, or bf16 with fp32 output).
///
/// Weights are reordered once, on the first call, into the blocked layout the chosen oneDNN
/// implementation wants; later calls with the same input size reuse the primitive.
public final class DNNLConvolution: @unchecked Sendable {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public let precision: Precision
    private var masterWeight: Tensor?          // OIHW fp32, dropped after the reorder
    private var stagedBF16: AlignedBuffer?     // OIHW bf16 (bf16 mode), dropped after the reorder
    private let bias: Tensor?
    private var packedWeight: AlignedBuffer?
    private var packedWeightMD: dnnl_memory_desc_t?
    private var primitives: [ShapeKey: Compiled] = [:]

    private struct ShapeKey: Hashable { let n: Int, h: Int, w: Int }
    private final class Compiled {
        let pd: dnnl_primitive_desc_t
        let primitive: dnnl_primitive_t
        init(pd: dnnl_primitive_desc_t, primitive: dnnl_primitive_t) { self.pd = pd; self.primitive = primitive }
        deinit { dnnl_primitive_destroy(primitive); dnnl_primitive_desc_destroy(pd) }
    }

    /// `weight` is `[out, in, k, k]` (PyTorch OIHW). It is kept until the first forward.
    public init(weight: Tensor, bias: Tensor?, stride: Int, padding: Int, precision: Precision) {
        precondition(weight.rank == 4 && weight.shape[2] == weight.shape[3], "conv weight must be [O,I,k,k], got \(weight.shape)")
        self.outChannels = weight.shape[0]
        self.inChannels = weight.shape[1]
        self.kernelSize = weight.shape[2]
        self.stride = stride
        self.padding = padding
        self.precision = precision
        self.bias = bias
        if precision == .bf16 {
            // Halve the resident size right away: only the bf16 values are needed for packing.
            let staged = AlignedBuffer(byteCount: weight.count * 2)
            mdq_f32_to_bf16(weight.data, staged.pointer.assumingMemoryBound(to: UInt16.self), weight.count)
            stagedBF16 = staged
        } else {
            self.masterWeight = weight
        }
    }

    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernelSize) / stride + 1, (w + 2 * padding - kernelSize) / stride + 1)
    }

    private var dataType: dnnl_data_type_t { precision == .bf16 ? dnnl_bf16 : dnnl_f32 }

    private func compile(n: Int, h: Int, w: Int) -> Compiled {
        let (oh, ow) = outputSize(h, w)
        var src = DNNLEngine.memoryDesc([n, inChannels, h, w], dataType, dnnl_nhwc)
        var dst = DNNLEngine.memoryDesc([n, outChannels, oh, ow], dnnl_f32, dnnl_nhwc)
        var wmd = packedWeightMD ?? DNNLEngine.memoryDesc([outChannels, inChannels, kernelSize, kernelSize], dataType, dnnl_format_tag_any)
        var bmd = DNNLEngine.memoryDesc([outChannels], dnnl_f32, dnnl_a)
        let strides: [Int64] = [Int64(stride), Int64(stride)]
        let pads: [Int64] = [Int64(padding), Int64(padding)]
        var desc = dnnl_convolution_desc_t()
        let hasBias = bias != nil
        withUnsafePointer(to: &bmd) { bp in
            DNNLEngine.check(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                               &src, &wmd, hasBias ? bp : nil, &dst, strides, pads, pads),
                             "convolution_forward_desc_init")
        }
        var pd: dnnl_primitive_desc_t?
        DNNLEngine.check(dnnl_primitive_desc_create(&pd, &desc, nil, DNNLEngine.shared.engine, nil),
                         "convolution primitive_desc_create \(inChannels)->\(outChannels) k\(kernelSize) \(h)x\(w) \(precision)")
        if packedWeightMD == nil {
            let want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)!.pointee
            let dims = [outChannels, inChannels, kernelSize, kernelSize]
            if let staged = stagedBF16 {
                packedWeight = DNNLEngine.shared.reorder(staged.pointer, DNNLEngine.memoryDesc(dims, dnnl_bf16, dnnl_oihw), to: want)
                stagedBF16 = nil
            } else {
                guard let master = masterWeight else { fatalError("convolution weights already released") }
                packedWeight = DNNLEngine.shared.reorder(master.data, DNNLEngine.memoryDesc(dims, dnnl_f32, dnnl_oihw), to: want)
            }
            packedWeightMD = want
        }
        var prim: dnnl_primitive_t?
        DNNLEngine.check(dnnl_primitive_create(&prim, pd), "convolution primitive_create")
        return Compiled(pd: pd!, primitive: prim!)
    }

    /// Frees the fp32 OIHW copy once the packed weights exist (inference-only memory saving).
    public func releaseMasterWeight() {
        if packedWeight != nil { masterWeight = nil }
    }

    /// Makes sure weights are packed for inputs of this size (used to pack before timing).
    public func prepare(height: Int, width: Int) {
        let key = ShapeKey(n: 1, h: height, w: width)
        if primitives[key] == nil { primitives[key] = compile(n: 1, h: height, w: width) }
    }

    public var implementation: String {
        primitives.values.first.map { DNNLEngine.implementationName($0.pd) } ?? "not compiled"
    }

    public func forward(_ x: FeatureMap) -> FeatureMap {
        precondition(x.channels == inChannels, "convolution expects \(inChannels) input channels, got \(x.channels)")
        let key = ShapeKey(n: x.batch, h: x.height, w: x.width)
        let compiled: Compiled
        if let c = primitives[key] { compiled = c } else { compiled = compile(n: x.batch, h: x.height, w: x.width); primitives[key] = compiled }
        let (oh, ow) = outputSize(x.height, x.width)
        FLOPCounter.add(macs: x.batch * oh * ow * outChannels * inChannels * kernelSize * kernelSize)
        let out = FeatureMap(batch: x.batch, height: oh, width: ow, channels: outChannels)
        let engine = DNNLEngine.shared
        var staged: AlignedBuffer?
        var srcPtr = UnsafeMutableRawPointer(x.tensor.data)
        if precision == .bf16 {
            staged = AlignedBuffer(byteCount: x.tensor.count * 2)
            mdq_f32_to_bf16(x.tensor.data, staged!.pointer.assumingMemoryBound(to: UInt16.self), x.tensor.count)
            srcPtr = staged!.pointer
        }
        let srcMD = dnnl_primitive_desc_query_md(compiled.pd, dnnl_query_src_md, 0)!.pointee
        let dstMD = dnnl_primitive_desc_query_md(compiled.pd, dnnl_query_dst_md, 0)!.pointee
        let s = engine.memory(srcMD, srcPtr)
        let wm = engine.memory(packedWeightMD!, packedWeight!.pointer)
        let d = engine.memory(dstMD, out.tensor.data)
        var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, s), (DNNL_ARG_WEIGHTS, wm), (DNNL_ARG_DST, d)]
        var b: dnnl_memory_t?
        if let bias {
            b = engine.memory(DNNLEngine.memoryDesc([outChannels], dnnl_f32, dnnl_a), bias.data)
            args.append((DNNL_ARG_BIAS, b!))
        }
        engine.execute(compiled.primitive, args)
        dnnl_memory_destroy(s); dnnl_memory_destroy(wm); dnnl_memory_destroy(d)
        if let b { dnnl_memory_destroy(b) }
        withExtendedLifetime(staged) {}
        return out
    }
}
