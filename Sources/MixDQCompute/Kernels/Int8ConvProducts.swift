/// Exact integer products of a W8A8 convolution on NHWC codes (u8 input with a border holding the
/// zero-point code, s8 weights, s32 outputs): on oneDNN (`DNNLInt8Convolution`), or on CPUs without
/// VNNI an im2col onto our exact VPMADDWD GEMM (`PairProductInt8Convolution`).
public protocol Int8ConvProducts: AnyObject, Sendable {
    var inChannels: Int { get }
    var outChannels: Int { get }
    var kernelSize: Int { get }
    var stride: Int { get }
    var padding: Int { get }
    /// Σ over (c, ky, kx) of w[o, c, ky, kx] per output channel.
    var weightSums: [Int32] { get }
    /// Bytes the weight codes occupy between calls.
    var weightBytesAtRest: Int { get }
    /// Whether each call runs oneDNN twice on the 7-bit halves of the codes.
    var splitsActivations: Bool { get }
    func outputSize(_ h: Int, _ w: Int) -> (Int, Int)
    /// An input whose border holds `padCode` (the real 0); the interior is the caller's to fill.
    func makeInput(batch: Int, height: Int, width: Int, padCode: UInt8) throws -> Int8ConvInput
    /// `y` receives `batch x oh x ow x outChannels` s32 (NHWC).
    func accumulate(_ input: Int8ConvInput, into y: UnsafeMutablePointer<Int32>) throws
    func implementation(batch: Int, height: Int, width: Int) throws -> String
    /// The products and the W8A8 epilogue into `y` (NHWC float, which also holds the s32 products in
    /// between; `residual` must not overlap it), as `Int8Products.accumulateDequantized`.
    func accumulateDequantized(_ input: Int8ConvInput, into y: UnsafeMutablePointer<Float>, zeroPoint: Int32, scales: [Float],
                               bias: Tensor?, residual: UnsafePointer<Float>?) throws
}

extension Int8ConvProducts {
    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernelSize) / stride + 1, (w + 2 * padding - kernelSize) / stride + 1)
    }

    public func makeInput(batch: Int, height: Int, width: Int, padCode: UInt8) throws -> Int8ConvInput {
        guard batch > 0, height > 0, width > 0, height + 2 * padding >= kernelSize, width + 2 * padding >= kernelSize else {
            throw Int8KernelError(layer: "int8 convolution \(inChannels)->\(outChannels) k\(kernelSize) p\(padding)",
                                  "input \(batch)x\(height)x\(width) is empty or smaller than the kernel with its padding")
        }
        return Int8ConvInput(batch: batch, height: height, width: width, channels: inChannels, padding: padding, padCode: padCode)
    }

    public func accumulateDequantized(_ input: Int8ConvInput, into y: UnsafeMutablePointer<Float>, zeroPoint: Int32, scales: [Float],
                                      bias: Tensor?, residual: UnsafePointer<Float>?) throws {
        let (oh, ow) = outputSize(input.height, input.width)
        let acc = UnsafeMutablePointer<Int32>(OpaquePointer(y))
        try accumulate(input, into: acc)
        Int8LinearKernel.dequantize(acc, into: y, rows: input.batch * oh * ow, columns: outChannels, zeroPoint: zeroPoint,
                                    weightSums: weightSums, scales: scales, bias: bias, residual: residual)
    }
}

public enum Int8ConvProductsChoice {
    /// As `Int8ProductsChoice.make`: the VPMADDWD path where oneDNN would need the split and the CPU
    /// has AVX2; `splitActivations` true / false force oneDNN's split / direct path.
    public static func make(weightCodes: [Int8], outChannels: Int, inChannels: Int, kernelSize: Int, stride: Int, padding: Int,
                            restBits: Int = 8, splitActivations: Bool? = nil, name: String? = nil) throws -> any Int8ConvProducts {
        if PairProductInt8Matmul.replacesSplit(weightCodes: weightCodes, restBits: restBits, splitActivations: splitActivations) {
            return try PairProductInt8Convolution(weightCodes: weightCodes, outChannels: outChannels, inChannels: inChannels,
                                                  kernelSize: kernelSize, stride: stride, padding: padding, name: name)
        }
        return try DNNLInt8Convolution(weightCodes: weightCodes, outChannels: outChannels, inChannels: inChannels, kernelSize: kernelSize,
                                       stride: stride, padding: padding, restBits: restBits, splitActivations: splitActivations, name: name)
    }
}

extension DNNLInt8Convolution: Int8ConvProducts {}
