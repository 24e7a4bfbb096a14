/// An exact u8 × s8 → s32 convolution for CPUs without VNNI: the padded input's k×k windows laid out
/// as rows (im2col: for each output pixel and kernel row, k·C contiguous codes of the padded NHWC
/// input, the border already holding the zero-point code) and multiplied on `PairProductInt8Matmul`
/// with the weights reordered once from OIHW to [out, ky, kx, in]. A 1×1 stride-1 convolution needs
/// no im2col: its input rows are the GEMM's rows.
public final class PairProductInt8Convolution: Int8ConvProducts, @unchecked Sendable {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public var splitsActivations: Bool { false }
    public var weightSums: [Int32] { gemm.weightSums }
    public var weightBytesAtRest: Int { gemm.weightBytesAtRest }
    private let gemm: PairProductInt8Matmul

    /// `weightCodes` `[out, in, k, k]` (PyTorch OIHW).
    public init(weightCodes: [Int8], outChannels: Int, inChannels: Int, kernelSize: Int, stride: Int, padding: Int, name: String? = nil) throws {
        let label = name ?? "int8 convolution [\(outChannels), \(inChannels), \(kernelSize), \(kernelSize)]"
        let taps = inChannels * kernelSize * kernelSize
        guard outChannels > 0, inChannels > 0, kernelSize > 0, stride > 0, padding >= 0, weightCodes.count == outChannels * taps else {
            throw Int8KernelError(layer: label, "\(weightCodes.count) weight codes for [\(outChannels), \(inChannels), \(kernelSize), \(kernelSize)] stride \(stride) padding \(padding)")
        }
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernelSize = kernelSize; self.stride = stride; self.padding = padding
        let k = kernelSize
        var reordered = [Int8](repeating: 0, count: weightCodes.count)
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                for ky in 0..<k {
                    for kx in 0..<k { reordered[o * taps + (ky * k + kx) * inChannels + c] = weightCodes[o * taps + (c * k + ky) * k + kx] }
                }
            }
        }
        gemm = try PairProductInt8Matmul(weightCodes: reordered, outFeatures: outChannels, inFeatures: taps, name: label)
    }

    /// A 1×1 stride-1 convolution without padding multiplies its input rows directly.
    private var readsInputRows: Bool { kernelSize == 1 && stride == 1 && padding == 0 }

    public func implementation(batch: Int, height: Int, width: Int) throws -> String {
        (readsInputRows ? "" : "im2col + ") + (try gemm.implementation(rows: batch * height * width))
    }

    public func accumulate(_ input: Int8ConvInput, into y: UnsafeMutablePointer<Int32>) throws {
        try withRows(input) { a, rows in try gemm.accumulate(a, rows: rows, into: y) }
    }

    public func accumulateDequantized(_ input: Int8ConvInput, into y: UnsafeMutablePointer<Float>, zeroPoint: Int32, scales: [Float],
                                      bias: Tensor?, residual: UnsafePointer<Float>?) throws {
        try withRows(input) { a, rows in
            try gemm.accumulateDequantized(a, rows: rows, into: y, zeroPoint: zeroPoint, scales: scales, bias: bias, residual: residual)
        }
    }

    /// The GEMM's rows: the input itself for a 1×1 stride-1 convolution, else its im2col.
    private func withRows(_ input: Int8ConvInput, _ body: (UnsafePointer<UInt8>, Int) throws -> Void) throws {
        guard input.channels == inChannels, input.padding == padding else {
            throw Int8KernelError(layer: "int8 convolution \(inChannels)->\(outChannels)",
                                  "input prepared for \(input.channels) channels, padding \(input.padding)")
        }
        let (oh, ow) = outputSize(input.height, input.width)
        let rows = input.batch * oh * ow
        if readsInputRows {
            try body(input.codes, rows)
            return
        }
        let (k, c, s) = (kernelSize, inChannels, stride)
        let rowLength = k * k * c, span = k * c
        let columns = AlignedBuffer(byteCount: rows * rowLength)
        let dst = columns.pointer.assumingMemoryBound(to: UInt8.self)
        let (ph, pw, codes) = (input.paddedHeight, input.paddedWidth, UnsafePointer(input.codes))
        // One output row (b, oy) per item: for each pixel and kernel row, k·C contiguous codes.
        RowParallel.run(rows: input.batch * oh, rowLength: ow * rowLength) { items in
            for item in items {
                let (b, oy) = (item / oh, item % oh)
                for ox in 0..<ow {
                    let out = dst + ((item * ow) + ox) * rowLength
                    for ky in 0..<k {
                        let src = codes + ((b * ph + oy * s + ky) * pw + ox * s) * c
                        (out + ky * span).update(from: src, count: span)
                    }
                }
            }
        }
        try body(dst, rows)
    }
}
