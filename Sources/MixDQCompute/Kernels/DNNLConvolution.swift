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
    private var primitives: [ShapeKey: DNNLPrimitive] = [:]

    private struct ShapeKey: Hashable { let n: Int, h: Int, w: Int }

    /// `weight` is `[out, in, k, k]` (PyTorch OIHW). It is kept until the first forward.
    public init(weight: Tensor, bias: Tensor?, stride: Int, padding: Int, precision: Precision) throws {
        guard weight.rank == 4, weight.shape[2] == weight.shape[3] else {
            throw DNNLError(operation: "conv weight must be [O,I,k,k], got \(weight.shape)", status: dnnl_invalid_arguments)
        }
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

    private func compile(n: Int, h: Int, w: Int) throws -> DNNLPrimitive {
        let (oh, ow) = outputSize(h, w)
        let what = "convolution \(inChannels)->\(outChannels) k\(kernelSize) s\(stride) p\(padding) on \(n)x\(h)x\(w) \(precision)"
        guard n > 0, oh > 0, ow > 0 else { throw DNNLError(operation: what, status: dnnl_invalid_arguments) }
        var src = try DNNLEngine.memoryDesc([n, inChannels, h, w], dataType, dnnl_nhwc)
        var dst = try DNNLEngine.memoryDesc([n, outChannels, oh, ow], dnnl_f32, dnnl_nhwc)
        var wmd = try packedWeightMD ?? DNNLEngine.memoryDesc([outChannels, inChannels, kernelSize, kernelSize], dataType, dnnl_format_tag_any)
        var bmd = try DNNLEngine.memoryDesc([outChannels], dnnl_f32, dnnl_a)
        let strides: [Int64] = [Int64(stride), Int64(stride)]
        let pads: [Int64] = [Int64(padding), Int64(padding)]
        var desc = dnnl_convolution_desc_t()
        let hasBias = bias != nil
        try withUnsafePointer(to: &bmd) { bp in
            try DNNLEngine.check(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                                   &src, &wmd, hasBias ? bp : nil, &dst, strides, pads, pads),
                                 "\(what) desc_init")
        }
        let compiled = try DNNLPrimitive(&desc, what)
        if packedWeightMD == nil {
            let want = try DNNLEngine.queriedMD(compiled.pd, dnnl_query_weights_md, what)
            let dims = [outChannels, inChannels, kernelSize, kernelSize]
            if let staged = stagedBF16 {
                packedWeight = try DNNLEngine.shared.reorder(staged.pointer, DNNLEngine.memoryDesc(dims, dnnl_bf16, dnnl_oihw), to: want)
                stagedBF16 = nil
            } else {
                guard let master = masterWeight else {
                    throw DNNLError(operation: "\(what): weights were released before packing", status: dnnl_runtime_error)
                }
                packedWeight = try DNNLEngine.shared.reorder(master.data, DNNLEngine.memoryDesc(dims, dnnl_f32, dnnl_oihw), to: want)
            }
            packedWeightMD = want
        }
        return compiled
    }

    /// Frees the fp32 OIHW copy once the packed weights exist (inference-only memory saving).
    public func releaseMasterWeight() {
        if packedWeight != nil { masterWeight = nil }
    }

    /// Makes sure weights are packed for inputs of this size (used to pack before timing).
    public func prepare(height: Int, width: Int) throws {
        let key = ShapeKey(n: 1, h: height, w: width)
        if primitives[key] == nil { primitives[key] = try compile(n: 1, h: height, w: width) }
    }

    public var implementation: String {
        primitives.values.first.map { DNNLEngine.implementationName($0.pd) } ?? "not compiled"
    }

    public func forward(_ x: FeatureMap) throws -> FeatureMap {
        guard x.channels == inChannels else {
            throw DNNLError(operation: "convolution expects \(inChannels) input channels, got \(x.channels)", status: dnnl_invalid_arguments)
        }
        let key = ShapeKey(n: x.batch, h: x.height, w: x.width)
        let compiled: DNNLPrimitive
        if let c = primitives[key] { compiled = c } else { compiled = try compile(n: x.batch, h: x.height, w: x.width); primitives[key] = compiled }
        let (oh, ow) = outputSize(x.height, x.width)
        FLOPCounter.add(macs: x.batch * oh * ow * outChannels * inChannels * kernelSize * kernelSize)
        let out = FeatureMap(batch: x.batch, height: oh, width: ow, channels: outChannels)
        let engine = DNNLEngine.shared
        var staged: AlignedBuffer?
        var srcPtr = UnsafeMutableRawPointer(x.tensor.data)
        if precision == .bf16 {
            staged = AlignedBuffer(byteCount: x.tensor.count * 2)
            Ops.convertToBF16(x.tensor.data, staged!.pointer.assumingMemoryBound(to: UInt16.self), count: x.tensor.count)
            srcPtr = staged!.pointer
        }
        let srcMD = try DNNLEngine.queriedMD(compiled.pd, dnnl_query_src_md, "convolution")
        let dstMD = try DNNLEngine.queriedMD(compiled.pd, dnnl_query_dst_md, "convolution")
        guard let packedWeightMD, let packedWeight else {
            throw DNNLError(operation: "convolution \(inChannels)->\(outChannels): weights not packed", status: dnnl_runtime_error)
        }
        var mems: [dnnl_memory_t] = []
        defer { mems.forEach { dnnl_memory_destroy($0) } }
        let s = try engine.memory(srcMD, srcPtr); mems.append(s)
        let wm = try engine.memory(packedWeightMD, packedWeight.pointer); mems.append(wm)
        let d = try engine.memory(dstMD, out.tensor.data); mems.append(d)
        var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, s), (DNNL_ARG_WEIGHTS, wm), (DNNL_ARG_DST, d)]
        if let bias {
            let b = try engine.memory(DNNLEngine.memoryDesc([outChannels], dnnl_f32, dnnl_a), bias.data); mems.append(b)
            args.append((DNNL_ARG_BIAS, b))
        }
        try engine.execute(compiled.primitive, args, "convolution \(inChannels)->\(outChannels) k\(kernelSize)")
        withExtendedLifetime(staged) {}
        return out
    }
}
