import CKernels

/// A W8A8 Conv2d on NHWC feature maps: the activation is quantized to u8 codes straight into a
/// buffer whose border holds the zero-point code (real 0, so padding is exact), the s8 weight codes
/// run as an exact s32 convolution (oneDNN, or im2col onto our VPMADDWD GEMM on CPUs without VNNI), and the epilogue is
/// `y[p, c] = (acc[p, c] - z·Σw[c]) · (Δx·Δw[c]) + bias[c]` (mixdq-method.md §7.3, §11.1 point 10).
public final class Int8Conv2dKernel: Conv2dKernel, @unchecked Sendable {
    public let name: String
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public let inputScale: Float
    public let inputZeroPoint: Int32
    /// Largest activation code, 2^bits - 1 (255 for 8-bit activations, 15 for 4-bit).
    public let inputCodeMax: Float
    /// Δx·Δw[c], computed once in float32.
    public let outputScales: [Float]
    private let bias: Tensor?
    public let convolution: any Int8ConvProducts

    /// Bytes the weight codes occupy between calls (packed at `restBits`; scales and bias not counted).
    public var weightBytesAtRest: Int { convolution.weightBytesAtRest }

    /// `weightCodes` is `[out, in, k, k]` (OIHW) in [-128, 127]; `name` appears in errors.
    /// `restBits` 2, 4 or 8: the codes rest packed at that width and unpack per call (they must fit it).
    public init(name: String, weightCodes: [Int8], outChannels: Int, inChannels: Int, kernelSize: Int, stride: Int, padding: Int,
                weightScales: [Float], inputScale: Float, inputZeroPoint: Int, activationBits: Int = 8, bias: Tensor?, restBits: Int = 8,
                splitActivations: Bool? = nil) throws {
        guard kernelSize > 0, stride > 0, padding >= 0 else {
            throw Int8KernelError(layer: name, "kernel \(kernelSize), stride \(stride), padding \(padding): kernel and stride must be positive, padding not negative")
        }
        let (taps, overflow) = inChannels.multipliedReportingOverflow(by: kernelSize * kernelSize)
        guard !overflow else { throw Int8KernelError(layer: name, "\(inChannels) x \(kernelSize)^2 taps overflow") }
        outputScales = try Int8KernelError.validatedScales(
            layer: name, outChannels: outChannels, reduction: taps, codeCount: weightCodes.count,
            weightScales: weightScales, inputScale: inputScale, inputZeroPoint: inputZeroPoint,
            activationBits: activationBits, bias: bias)
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.inputScale = inputScale
        self.inputZeroPoint = Int32(inputZeroPoint)
        inputCodeMax = Float((1 << activationBits) - 1)
        self.bias = bias
        convolution = try Int8ConvProductsChoice.make(weightCodes: weightCodes, outChannels: outChannels, inChannels: inChannels,
                                                      kernelSize: kernelSize, stride: stride, padding: padding,
                                                      restBits: restBits, splitActivations: splitActivations, name: name)
    }

    public func forward(_ x: FeatureMap) throws -> FeatureMap { try forward(x, residual: nil) }

    /// `forward(x) + residual` with the add fused into the dequantization epilogue (bit-identical to
    /// adding afterwards).
    public func forward(_ x: FeatureMap, adding residual: FeatureMap) throws -> FeatureMap { try forward(x, residual: residual) }

    private func forward(_ x: FeatureMap, residual: FeatureMap?) throws -> FeatureMap {
        guard x.channels == inChannels else {
            throw Int8KernelError(layer: name, "expects \(inChannels) input channels, got feature map \(x.tensor.shape)")
        }
        guard x.height + 2 * padding >= kernelSize, x.width + 2 * padding >= kernelSize else {
            throw Int8KernelError(layer: name, "input \(x.height)x\(x.width) smaller than kernel \(kernelSize) with padding \(padding)")
        }
        let (oh, ow) = convolution.outputSize(x.height, x.width)
        let out = FeatureMap(batch: x.batch, height: oh, width: ow, channels: outChannels)
        if let residual, residual.tensor.shape != out.tensor.shape {
            throw Int8KernelError(layer: name, "residual \(residual.tensor.shape) does not match the output \(out.tensor.shape)")
        }
        guard x.batch > 0 else { return out }
        let input = try convolution.makeInput(batch: x.batch, height: x.height, width: x.width, padCode: UInt8(inputZeroPoint))
        let (h, rowLength, delta, zp, top) = (x.height, x.width * inChannels, inputScale, Float(inputZeroPoint), inputCodeMax)
        RowParallel.run(rows: x.batch * h, rowLength: rowLength) { rows in
            for r in rows {
                mdq_quantize_u8(x.tensor.data + r * rowLength, input.row(batch: r / h, y: r % h), rowLength, delta, zp, top)
            }
        }
        // The s32 products go straight into the output's storage and are dequantized in place.
        try convolution.accumulateDequantized(input, into: out.tensor.data, zeroPoint: inputZeroPoint, scales: outputScales, bias: bias,
                                              residual: residual.map { UnsafePointer($0.tensor.data) })
        return out
    }
}
