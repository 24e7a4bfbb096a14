import CDNNL
import CKernels
import Foundation

/// A 2-D convolution on NHWC feature maps run by oneDNN (fp32, or bf16 with fp32 output).
///
/// Weights are reordered once, on the first call, into the blocked layout the chosen oneDNN
/// implementation wants; later calls with the same input size reuse the primitive. Under
/// `ConvolutionAlgorithm.auto` an fp32 3×3 stride-1 layer runs as Winograd where oneDNN has it:
/// its input and output are staged through oneDNN's blocked layout, in bands of rows when the input
/// is larger than `winogradInputLimit` (`WinogradBands`), and the fp32 OIHW weights stay (the
/// Winograd-transformed layout depends on the input size, so another size repacks from them).
public final class DNNLConvolution: @unchecked Sendable {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public let precision: Precision
    /// Read from `ConvolutionAlgorithm.current` when the layer is made, unless given.
    public let algorithm: ConvolutionAlgorithm
    /// Largest input per sample (elements) a Winograd call stages at once; larger inputs run in bands.
    public let winogradInputLimit: Int
    private var masterWeight: Tensor?          // OIHW fp32, dropped after the reorder (kept by Winograd layers)
    private var stagedBF16: AlignedBuffer?     // OIHW bf16 (bf16 mode), dropped after the reorder
    private let bias: Tensor?
    private var packedWeight: AlignedBuffer?   // direct layout, shared by every direct input size
    private var packedWeightMD: dnnl_memory_desc_t?
    private var winogradWeight: (md: dnnl_memory_desc_t, buffer: AlignedBuffer)?  // the latest Winograd packing
    private var primitives: [ShapeKey: Compiled] = [:]

    private struct ShapeKey: Hashable { let n: Int, h: Int, w: Int }

    /// A compiled input size: direct on NHWC, or Winograd through blocked staging buffers.
    private struct Compiled {
        let conv: DNNLPrimitive
        let winograd: WinogradStaging?
    }

    /// The blocked buffers and scratchpad of one Winograd call, and the copies between them and the
    /// NHWC tensors: keyed by the rows copied and where they land (the whole map when not banded).
    private struct WinogradStaging {
        let srcMD: dnnl_memory_desc_t, dstMD: dnnl_memory_desc_t, weightMD: dnnl_memory_desc_t
        let scratchpadMD: dnnl_memory_desc_t
        let bands: WinogradBands?
        let toBlocked: [RowSpan: StagingCopy], toNHWC: [RowSpan: StagingCopy]
    }

    private struct RowSpan: Hashable { let rows: Int, offset: Int }

    private struct StagingCopy {
        let from: dnnl_memory_desc_t, to: dnnl_memory_desc_t, reorder: DNNLPrimitive
        init(from: dnnl_memory_desc_t, to: dnnl_memory_desc_t, _ what: String) throws {
            (self.from, self.to) = (from, to)
            reorder = try DNNLPrimitive(reorderFrom: from, to: to, what)
        }
    }

    /// `weight` is `[out, in, k, k]` (PyTorch OIHW). It is kept until the first forward.
    public init(weight: Tensor, bias: Tensor?, stride: Int, padding: Int, precision: Precision,
                algorithm: ConvolutionAlgorithm = ConvolutionAlgorithm.current,
                winogradInputLimit: Int = ConvolutionAlgorithm.maximumWinogradInputElements) throws {
        guard weight.rank == 4, weight.shape[2] == weight.shape[3] else {
            throw DNNLError(operation: "conv weight must be [O,I,k,k], got \(weight.shape)", status: dnnl_invalid_arguments)
        }
        self.outChannels = weight.shape[0]
        self.inChannels = weight.shape[1]
        self.kernelSize = weight.shape[2]
        self.stride = stride
        self.padding = padding
        self.precision = precision
        self.algorithm = algorithm
        self.winogradInputLimit = winogradInputLimit
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
    private var weightDims: [Int] { [outChannels, inChannels, kernelSize, kernelSize] }

    private func describe(n: Int, h: Int, w: Int) -> String {
        "convolution \(inChannels)->\(outChannels) k\(kernelSize) s\(stride) p\(padding) on \(n)x\(h)x\(w) \(precision)"
    }

    private func compile(n: Int, h: Int, w: Int) throws -> Compiled {
        let (oh, ow) = outputSize(h, w)
        guard n > 0, oh > 0, ow > 0 else { throw DNNLError(operation: describe(n: n, h: h, w: w), status: dnnl_invalid_arguments) }
        if masterWeight != nil,
           algorithm.prefersWinograd(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize,
                                     stride: stride, outputHeight: oh, outputWidth: ow, precision: precision),
           let winograd = try compileWinograd(n: n, h: h, w: w) {
            return winograd
        }
        return Compiled(conv: try compileDirect(n: n, h: h, w: w), winograd: nil)
    }

    /// `verticalPadding` false: no padding above and below (a band's input carries its halo rows).
    private func convolutionDesc(_ algorithm: dnnl_alg_kind_t, src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t,
                                 dst: dnnl_memory_desc_t, verticalPadding: Bool = true, _ what: String) throws -> dnnl_convolution_desc_t {
        var (src, wmd, dst) = (src, weights, dst)
        var bmd = try DNNLEngine.memoryDesc([outChannels], dnnl_f32, dnnl_a)
        let strides: [Int64] = [Int64(stride), Int64(stride)]
        let pads: [Int64] = [verticalPadding ? Int64(padding) : 0, Int64(padding)]
        var desc = dnnl_convolution_desc_t()
        let hasBias = bias != nil
        try withUnsafePointer(to: &bmd) { bp in
            try DNNLEngine.check(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, algorithm,
                                                                   &src, &wmd, hasBias ? bp : nil, &dst, strides, pads, pads),
                                 "\(what) desc_init")
        }
        return desc
    }

    private func compileDirect(n: Int, h: Int, w: Int) throws -> DNNLPrimitive {
        let (oh, ow) = outputSize(h, w)
        let what = describe(n: n, h: h, w: w)
        var desc = try convolutionDesc(dnnl_convolution_direct,
                                       src: DNNLEngine.memoryDesc([n, inChannels, h, w], dataType, dnnl_nhwc),
                                       weights: packedWeightMD ?? DNNLEngine.memoryDesc(weightDims, dataType, dnnl_format_tag_any),
                                       dst: DNNLEngine.memoryDesc([n, outChannels, oh, ow], dnnl_f32, dnnl_nhwc), what)
        let compiled = try DNNLPrimitive(&desc, what)
        if packedWeightMD == nil {
            let want = try DNNLEngine.queriedMD(compiled.pd, dnnl_query_weights_md, what)
            if let staged = stagedBF16 {
                packedWeight = try DNNLEngine.shared.reorder(staged.pointer, DNNLEngine.memoryDesc(weightDims, dnnl_bf16, dnnl_oihw), to: want)
                stagedBF16 = nil
            } else {
                packedWeight = try DNNLEngine.shared.reorder(try master(what).data, DNNLEngine.memoryDesc(weightDims, dnnl_f32, dnnl_oihw), to: want)
            }
            packedWeightMD = want
        }
        return compiled
    }

    /// A Winograd primitive for this input size (on one band of rows of one sample when the input
    /// exceeds `winogradInputLimit`), or nil where oneDNN has none (CPU, shape).
    private func compileWinograd(n: Int, h: Int, w: Int) throws -> Compiled? {
        let (oh, ow) = outputSize(h, w)
        let what = describe(n: n, h: h, w: w) + " winograd"
        let bands = stride == 1 ? WinogradBands(channels: inChannels, inputHeight: h, inputWidth: w, kernelSize: kernelSize,
                                                padding: padding, maximumElements: winogradInputLimit) : nil
        let (callN, callH, callOH) = bands.map { (1, $0.stagedRows, $0.rowsPerBand) } ?? (n, h, oh)
        let any = dnnl_format_tag_any
        guard var desc = try? convolutionDesc(dnnl_convolution_winograd,
                                              src: DNNLEngine.memoryDesc([callN, inChannels, callH, w], dnnl_f32, any),
                                              weights: DNNLEngine.memoryDesc(weightDims, dnnl_f32, any),
                                              dst: DNNLEngine.memoryDesc([callN, outChannels, callOH, ow], dnnl_f32, any),
                                              verticalPadding: bands == nil, what),
              // F(4x4,3x3) where oneDNN has it: its F(2x2,3x3), offered first for some shapes, ran a
              // VAE decoder's 128-channel bands at 512 columns ~2x slower.
              let conv = try? DNNLPrimitive(&desc, attributes: DNNLAttributes(userScratchpad: true),
                                            preferring: { $0.contains("wino_4x3") }, what) else { return nil }
        let srcMD = try DNNLEngine.queriedMD(conv.pd, dnnl_query_src_md, what)
        let dstMD = try DNNLEngine.queriedMD(conv.pd, dnnl_query_dst_md, what)
        // The copies each band needs: its source rows into the blocked input at their offset, and its
        // output rows (the last band may have fewer) out of the blocked output.
        let inputSpans = bands.map { b in b.bands.map { RowSpan(rows: $0.inputRows, offset: $0.stagingOffset) } } ?? [RowSpan(rows: h, offset: 0)]
        let outputSpans = bands.map { b in b.bands.map { RowSpan(rows: $0.outputRows, offset: 0) } } ?? [RowSpan(rows: oh, offset: 0)]
        var toBlocked: [RowSpan: StagingCopy] = [:], toNHWC: [RowSpan: StagingCopy] = [:]
        for span in inputSpans where toBlocked[span] == nil {
            toBlocked[span] = try StagingCopy(from: DNNLEngine.memoryDesc([callN, inChannels, span.rows, w], dnnl_f32, dnnl_nhwc),
                                              to: Self.rows(of: srcMD, span), "\(what) input rows \(span.rows)+\(span.offset)")
        }
        for span in outputSpans where toNHWC[span] == nil {
            toNHWC[span] = try StagingCopy(from: Self.rows(of: dstMD, span),
                                           to: DNNLEngine.memoryDesc([callN, outChannels, span.rows, ow], dnnl_f32, dnnl_nhwc),
                                           "\(what) output rows \(span.rows)")
        }
        return Compiled(conv: conv, winograd: WinogradStaging(
            srcMD: srcMD, dstMD: dstMD, weightMD: try DNNLEngine.queriedMD(conv.pd, dnnl_query_weights_md, what),
            scratchpadMD: try DNNLEngine.queriedMD(conv.pd, dnnl_query_scratchpad_md, what),
            bands: bands, toBlocked: toBlocked, toNHWC: toNHWC))
    }

    /// Rows `span.offset ..< span.offset + span.rows` of a blocked NCHW-order descriptor (itself when whole).
    private static func rows(of md: dnnl_memory_desc_t, _ span: RowSpan) throws -> dnnl_memory_desc_t {
        var parent = md
        guard span.offset != 0 || Int(md.dims.2) != span.rows else { return md }
        var sub = dnnl_memory_desc_t()
        let dims: [Int64] = [md.dims.0, md.dims.1, Int64(span.rows), md.dims.3]
        let offsets: [Int64] = [0, 0, Int64(span.offset), 0]
        try DNNLEngine.check(dnnl_memory_desc_init_submemory(&sub, &parent, dims, offsets), "rows \(span.offset)..<\(span.offset + span.rows) of a blocked map")
        return sub
    }

    private func master(_ what: @autoclosure () -> String) throws -> Tensor {
        guard let masterWeight else {
            throw DNNLError(operation: "\(what()): weights were released before packing", status: dnnl_runtime_error)
        }
        return masterWeight
    }

    /// The Winograd-transformed weights in `md`, packed from the fp32 weights when the layout changed.
    private func winogradWeights(_ md: dnnl_memory_desc_t, _ what: @autoclosure () -> String) throws -> UnsafeMutableRawPointer {
        var wanted = md
        if var current = winogradWeight?.md, dnnl_memory_desc_equal(&current, &wanted) != 0, let buffer = winogradWeight?.buffer {
            return buffer.pointer
        }
        winogradWeight = nil  // free the previous layout first
        let buffer = try DNNLEngine.shared.reorder(try master(what()).data, DNNLEngine.memoryDesc(weightDims, dnnl_f32, dnnl_oihw), to: md)
        winogradWeight = (md, buffer)
        return buffer.pointer
    }

    /// Frees the fp32 OIHW copy once the packed weights exist (inference-only memory saving). A
    /// layer that runs Winograd keeps it: another input size needs another transformed layout.
    public func releaseMasterWeight() {
        if packedWeight != nil, winogradWeight == nil { masterWeight = nil }
    }

    /// Makes sure weights are packed for inputs of this size (used to pack before timing).
    public func prepare(height: Int, width: Int) throws {
        let key = ShapeKey(n: 1, h: height, w: width)
        if primitives[key] == nil { primitives[key] = try compile(n: 1, h: height, w: width) }
        if let staging = primitives[key]?.winograd { _ = try winogradWeights(staging.weightMD, describe(n: 1, h: height, w: width)) }
    }

    public var implementation: String {
        primitives.values.first.map { DNNLEngine.implementationName($0.conv.pd) } ?? "not compiled"
    }

    public func forward(_ x: FeatureMap) throws -> FeatureMap {
        guard x.channels == inChannels else {
            throw DNNLError(operation: "convolution expects \(inChannels) input channels, got \(x.channels)", status: dnnl_invalid_arguments)
        }
        let key = ShapeKey(n: x.batch, h: x.height, w: x.width)
        let compiled: Compiled
        if let c = primitives[key] { compiled = c } else { compiled = try compile(n: x.batch, h: x.height, w: x.width); primitives[key] = compiled }
        let (oh, ow) = outputSize(x.height, x.width)
        FLOPCounter.add(macs: x.batch * oh * ow * outChannels * inChannels * kernelSize * kernelSize)
        let out = FeatureMap(batch: x.batch, height: oh, width: ow, channels: outChannels)
        if let staging = compiled.winograd {
            try forwardWinograd(x, compiled.conv, staging, into: out)
            return out
        }
        var staged: AlignedBuffer?
        var srcPtr = UnsafeMutableRawPointer(x.tensor.data)
        if precision == .bf16 {
            let buffer = AlignedBuffer(byteCount: x.tensor.count * 2)
            Ops.convertToBF16(x.tensor.data, buffer.pointer.assumingMemoryBound(to: UInt16.self), count: x.tensor.count)
            (staged, srcPtr) = (buffer, buffer.pointer)
        }
        let srcMD = try DNNLEngine.queriedMD(compiled.conv.pd, dnnl_query_src_md, "convolution")
        let dstMD = try DNNLEngine.queriedMD(compiled.conv.pd, dnnl_query_dst_md, "convolution")
        guard let packedWeightMD, let packedWeight else {
            throw DNNLError(operation: "convolution \(inChannels)->\(outChannels): weights not packed", status: dnnl_runtime_error)
        }
        try run(compiled.conv, src: (srcMD, srcPtr), weights: (packedWeightMD, packedWeight.pointer),
                dst: (dstMD, UnsafeMutableRawPointer(out.tensor.data)))
        withExtendedLifetime(staged) {}
        return out
    }

    /// NHWC input -> blocked layout -> Winograd convolution -> NHWC output, band by band when banded.
    private func forwardWinograd(_ x: FeatureMap, _ conv: DNNLPrimitive, _ staging: WinogradStaging, into out: FeatureMap) throws {
        let what = describe(n: x.batch, h: x.height, w: x.width) + " winograd"
        let weights = try winogradWeights(staging.weightMD, what)
        var (srcMD, dstMD, scratchpadMD) = (staging.srcMD, staging.dstMD, staging.scratchpadMD)
        let blockedSrc = AlignedBuffer(byteCount: dnnl_memory_desc_get_size(&srcMD))
        let blockedDst = AlignedBuffer(byteCount: dnnl_memory_desc_get_size(&dstMD))
        let scratchpad = AlignedBuffer(byteCount: dnnl_memory_desc_get_size(&scratchpadMD))
        let engine = DNNLEngine.shared
        func copy(_ copies: [RowSpan: StagingCopy], _ span: RowSpan, from: UnsafeRawPointer, to: UnsafeMutableRawPointer) throws {
            guard let c = copies[span] else {
                throw DNNLError(operation: "\(what): no staging copy for \(span.rows) rows at \(span.offset)", status: dnnl_runtime_error)
            }
            try engine.execute(c.reorder, from: from, c.from, to: to, c.to)
        }
        func convolve() throws {
            try run(conv, src: (srcMD, blockedSrc.pointer), weights: (staging.weightMD, weights), dst: (dstMD, blockedDst.pointer),
                    scratchpad: (scratchpadMD, scratchpad.pointer))
        }
        guard let bands = staging.bands else {
            try copy(staging.toBlocked, RowSpan(rows: x.height, offset: 0), from: x.tensor.data, to: blockedSrc.pointer)
            try convolve()
            try copy(staging.toNHWC, RowSpan(rows: out.height, offset: 0), from: blockedDst.pointer, to: out.tensor.data)
            return
        }
        // Channel padding of the blocked layout must read as zeros too; a band copy fills only its rows.
        let paddedChannels = srcMD.padded_dims.1 != srcMD.dims.1
        let (inRow, outRow) = (x.width * inChannels, out.width * outChannels)
        for sample in 0..<x.batch {
            for band in bands.bands {
                if paddedChannels || bands.needsZeros(band) { memset(blockedSrc.pointer, 0, blockedSrc.byteCount) }
                try copy(staging.toBlocked, RowSpan(rows: band.inputRows, offset: band.stagingOffset),
                         from: x.tensor.data + (sample * x.height + band.inputStart) * inRow, to: blockedSrc.pointer)
                try convolve()
                try copy(staging.toNHWC, RowSpan(rows: band.outputRows, offset: 0), from: blockedDst.pointer,
                         to: out.tensor.data + (sample * out.height + band.outputStart) * outRow)
            }
        }
    }

    /// Bands per sample this layer runs at an input size: 1 for one Winograd call, nil when not
    /// Winograd (or not compiled at that size yet).
    public func winogradBandCount(height: Int, width: Int, batch: Int = 1) -> Int? {
        guard let staging = primitives[ShapeKey(n: batch, h: height, w: width)]?.winograd else { return nil }
        return staging.bands?.bands.count ?? 1
    }

    private func run(_ conv: DNNLPrimitive, src: (dnnl_memory_desc_t, UnsafeMutableRawPointer),
                     weights: (dnnl_memory_desc_t, UnsafeMutableRawPointer), dst: (dnnl_memory_desc_t, UnsafeMutableRawPointer),
                     scratchpad: (dnnl_memory_desc_t, UnsafeMutableRawPointer)? = nil) throws {
        let engine = DNNLEngine.shared
        var mems: [dnnl_memory_t] = []
        defer { mems.forEach { dnnl_memory_destroy($0) } }
        let s = try engine.memory(src.0, src.1); mems.append(s)
        let wm = try engine.memory(weights.0, weights.1); mems.append(wm)
        let d = try engine.memory(dst.0, dst.1); mems.append(d)
        var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, s), (DNNL_ARG_WEIGHTS, wm), (DNNL_ARG_DST, d)]
        if let bias {
            let b = try engine.memory(DNNLEngine.memoryDesc([outChannels], dnnl_f32, dnnl_a), bias.data); mems.append(b)
            args.append((DNNL_ARG_BIAS, b))
        }
        if let scratchpad {
            let m = try engine.memory(scratchpad.0, scratchpad.1); mems.append(m)
            args.append((DNNL_ARG_SCRATCHPAD, m))
        }
        try engine.execute(conv.primitive, args, "convolution \(inChannels)->\(outChannels) k\(kernelSize)")
    }
}
