import CDNNL
import CKernels

/// Exact integer 2-D convolution on oneDNN: u8 NHWC activation codes, s8 OIHW weight codes
/// (reordered once, at construction, into the layout oneDNN picks; with `restBits` 4 or 2 that
/// layout rests packed and each call unpacks it: `Int8WeightsAtRest`), s32 NHWC output; equals
/// `mdq_conv_u8s8s32_ref` on every CPU (7-bit activation split where needed: `Int8ActivationSplit`).
///
/// Padding: oneDNN would pad u8 with code 0, which is the real value -z·Δx, not 0. The input is
/// instead written into a buffer whose border already holds the zero-point code z (real 0) and the
/// primitive runs with padding 0. The activation quantizer writes straight into the interior, so
/// the only extra work is filling the border, and the epilogue stays one per-channel correction
/// z·Σw (every tap, in-bounds or not, reads a code whose real value is (q - z)·Δx).
public final class DNNLInt8Convolution: @unchecked Sendable {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    /// Whether each call runs the hi/lo halves of the codes (CPUs without VNNI; `Int8ActivationSplit`).
    public let splitsActivations: Bool
    /// Σ over (c, ky, kx) of w[o, c, ky, kx] per output channel.
    public let weightSums: [Int32]
    private var weights: Int8WeightsAtRest
    private let plainMD: dnnl_memory_desc_t
    private var primitives: [ShapeKey: DNNLPrimitive] = [:]

    private struct ShapeKey: Hashable { let n: Int, h: Int, w: Int }

    /// Bit width the weights rest at (2, 4 or 8).
    public var restBits: Int { weights.restBits }
    /// Bytes the weights occupy between calls (oneDNN's layout, packed at `restBits`).
    public var weightBytesAtRest: Int { weights.bytesAtRest }
    /// Whether packed weights unpack straight into oneDNN's layout (no per-call reorder).
    public var unpacksIntoPrimitiveLayout: Bool { weights.packsPrimitiveLayout }

    /// `weightCodes` is `[out, in, k, k]` (PyTorch OIHW) s8; `restBits` 2, 4 or 8 is the width they rest
    /// at (codes must fit it; errors name `name`).
    /// `splitActivations` nil: decided by the CPU and the codes (`Int8ActivationSplit.needed`).
    /// `packPrimitiveLayout` false: packed weights keep their plain order and are reordered per call (tests).
    public init(weightCodes: [Int8], outChannels: Int, inChannels: Int, kernelSize: Int, stride: Int, padding: Int,
                restBits: Int = 8, splitActivations: Bool? = nil, name: String? = nil, packPrimitiveLayout: Bool = true) throws {
        let taps = inChannels * kernelSize * kernelSize
        guard outChannels > 0, inChannels > 0, kernelSize > 0, stride > 0, padding >= 0,
              weightCodes.count == outChannels * taps else {
            throw DNNLError(operation: "int8 convolution weights: \(weightCodes.count) codes for [\(outChannels), \(inChannels), \(kernelSize), \(kernelSize)] stride \(stride) padding \(padding)",
                            status: dnnl_invalid_arguments)
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        splitsActivations = splitActivations ?? Int8ActivationSplit.needed(weightCodes: weightCodes)
        weightSums = Int8WeightSums.perOutput(weightCodes, outputs: outChannels, rowLength: taps)
        let dims = [outChannels, inChannels, kernelSize, kernelSize]
        // A nominal 32x32 padded input to learn the weight layout; packed now, codes not kept.
        let nominal = ShapeKey(n: 1, h: max(32, kernelSize), w: max(32, kernelSize))
        let first = try Self.compile(nominal, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                                     weightMD: DNNLEngine.memoryDesc(dims, dnnl_s8, dnnl_format_tag_any))
        let want = try DNNLEngine.queriedMD(first.pd, dnnl_query_weights_md, "int8 convolution \(inChannels)->\(outChannels)")
        let userMD = try DNNLEngine.memoryDesc(dims, dnnl_s8, dnnl_oihw)
        plainMD = userMD
        weights = try Int8WeightsAtRest(codes: weightCodes, plainMD: userMD, layoutMD: want, restBits: restBits,
                                        name: name ?? "int8 convolution [\(outChannels), \(inChannels), \(kernelSize), \(kernelSize)]",
                                        packPrimitiveLayout: packPrimitiveLayout)
        primitives[nominal] = first
    }

    /// A primitive over an already padded input `[n, h, w]` (padding 0 for oneDNN).
    private static func compile(_ key: ShapeKey, inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int,
                                weightMD: dnnl_memory_desc_t) throws -> DNNLPrimitive {
        let oh = (key.h - kernelSize) / stride + 1, ow = (key.w - kernelSize) / stride + 1
        let what = "int8 convolution \(inChannels)->\(outChannels) k\(kernelSize) s\(stride) on padded \(key.n)x\(key.h)x\(key.w)"
        var src = try DNNLEngine.memoryDesc([key.n, inChannels, key.h, key.w], dnnl_u8, dnnl_nhwc)
        var wmd = weightMD
        var dst = try DNNLEngine.memoryDesc([key.n, outChannels, oh, ow], dnnl_s32, dnnl_nhwc)
        let strides: [Int64] = [Int64(stride), Int64(stride)]
        let zeros: [Int64] = [0, 0]
        var desc = dnnl_convolution_desc_t()
        try DNNLEngine.check(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                               &src, &wmd, nil, &dst, strides, zeros, zeros), "\(what) desc_init")
        return try DNNLPrimitive(&desc, what)
    }

    private func compiled(_ key: ShapeKey) throws -> DNNLPrimitive {
        if let c = primitives[key] { return c }
        var c = try Self.compile(key, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                                 weightMD: weights.layoutMD)
        if DNNLEngine.implementationName(c.pd).hasPrefix("ref") {
            // The layout chosen for the nominal shape has no fast kernel at this one (AMX brgconv picks
            // layouts by shape; oneDNN's reference convolution is ~1000x slower): lay the codes out
            // once for this shape. A UNet layer sees one input size per forward. (Found by
            // `bench unet --quant` on Sapphire Rapids.)
            let any = try Self.compile(key, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                                       weightMD: DNNLEngine.memoryDesc([outChannels, inChannels, kernelSize, kernelSize], dnnl_s8,
                                                                       dnnl_format_tag_any))
            var want = try DNNLEngine.queriedMD(any.pd, dnnl_query_weights_md, "int8 convolution \(inChannels)->\(outChannels)")
            var have = weights.layoutMD
            if dnnl_memory_desc_equal(&want, &have) == 0 {
                weights = try weights.relaidOut(to: want, plainMD: plainMD)
                primitives.removeAll()
                c = any
            }
        }
        primitives[key] = c
        return c
    }

    /// Name of the oneDNN implementation for this (unpadded) input size.
    public func implementation(batch: Int, height: Int, width: Int) throws -> String {
        let key = ShapeKey(n: batch, h: height + 2 * padding, w: width + 2 * padding)
        return DNNLEngine.implementationName(try compiled(key).pd)
    }

    /// `y` receives `batch x oh x ow x outChannels` s32 (NHWC).
    public func accumulate(_ input: Int8ConvInput, into y: UnsafeMutablePointer<Int32>) throws {
        guard input.channels == inChannels, input.padding == padding else {
            throw DNNLError(operation: "int8 convolution \(inChannels)->\(outChannels): input prepared for \(input.channels) channels, padding \(input.padding)",
                            status: dnnl_invalid_arguments)
        }
        let (oh, ow) = outputSize(input.height, input.width)
        FLOPCounter.add(macs: input.batch * oh * ow * outChannels * inChannels * kernelSize * kernelSize)
        let key = ShapeKey(n: input.batch, h: input.paddedHeight, w: input.paddedWidth)
        // Compile (and, if this shape needs another layout, re-lay the weights) before borrowing them.
        _ = try compiled(key)
        try weights.withLayoutWeights { w in
            if !splitsActivations {
                try run(input.codes, key, weights: w, into: y)
                return
            }
            // Both halves on the same weights (the border code z splits consistently too): acc_lo
            // straight into y, acc_hi into scratch, then y = 128 acc_hi + acc_lo in place.
            let count = input.codeCount
            let halves = AlignedBuffer(byteCount: 2 * count)
            let hi = halves.pointer.assumingMemoryBound(to: UInt8.self)
            mdq_split_u8_hi_lo(input.codes, hi, hi + count, count)
            let outCount = input.batch * oh * ow * outChannels
            let products = AlignedBuffer(byteCount: outCount * MemoryLayout<Int32>.stride)
            let accHi = products.pointer.assumingMemoryBound(to: Int32.self)
            try run(hi, key, weights: w, into: accHi)
            try run(hi + count, key, weights: w, into: y)
            mdq_combine_hi_lo_s32(accHi, y, y, outCount)
        }
    }

    private func run(_ x: UnsafePointer<UInt8>, _ key: ShapeKey, weights: UnsafeMutableRawPointer, into y: UnsafeMutablePointer<Int32>) throws {
        let compiled = try compiled(key)
        let what = "int8 convolution \(inChannels)->\(outChannels) k\(kernelSize) s\(stride) on padded \(key.n)x\(key.h)x\(key.w)"
        let engine = DNNLEngine.shared
        var mems: [dnnl_memory_t] = []
        defer { mems.forEach { dnnl_memory_destroy($0) } }
        let s = try engine.memory(DNNLEngine.queriedMD(compiled.pd, dnnl_query_src_md, what), UnsafeMutableRawPointer(mutating: x))
        mems.append(s)
        let w = try engine.memory(self.weights.layoutMD, weights); mems.append(w)
        let d = try engine.memory(DNNLEngine.queriedMD(compiled.pd, dnnl_query_dst_md, what), y); mems.append(d)
        try engine.execute(compiled.primitive, [(DNNL_ARG_SRC, s), (DNNL_ARG_WEIGHTS, w), (DNNL_ARG_DST, d)], what)
    }
}

/// u8 NHWC codes with a `padding`-wide border already holding the zero-point code.
public final class Int8ConvInput: @unchecked Sendable {
    public let batch: Int, height: Int, width: Int, channels: Int, padding: Int
    public var paddedHeight: Int { height + 2 * padding }
    public var paddedWidth: Int { width + 2 * padding }
    var codeCount: Int { batch * paddedHeight * paddedWidth * channels }
    private let storage: AlignedBuffer
    var codes: UnsafeMutablePointer<UInt8> { storage.pointer.assumingMemoryBound(to: UInt8.self) }

    init(batch: Int, height: Int, width: Int, channels: Int, padding: Int, padCode: UInt8) {
        self.batch = batch; self.height = height; self.width = width; self.channels = channels; self.padding = padding
        storage = AlignedBuffer(byteCount: batch * (height + 2 * padding) * (width + 2 * padding) * channels)
        // Only a border exists to fill; the interior is overwritten by the caller.
        if padding > 0 { storage.pointer.initializeMemory(as: UInt8.self, repeating: padCode, count: storage.byteCount) }
    }

    /// First code of image `b`, input row `y` (unpadded coordinates): `width x channels` bytes to write.
    public func row(batch b: Int, y: Int) -> UnsafeMutablePointer<UInt8> {
        codes + ((b * paddedHeight + y + padding) * paddedWidth + padding) * channels
    }

    /// Copies unpadded NHWC codes `[batch, height, width, channels]` into the interior.
    public func fill(from x: UnsafePointer<UInt8>) {
        let rowLength = width * channels
        for b in 0..<batch {
            for y in 0..<height { row(batch: b, y: y).update(from: x + (b * height + y) * rowLength, count: rowLength) }
        }
    }
}
