import Foundation
import MixDQCompute

/// A frozen layer (FP weights dropped by `freeze()`) asked to run in FP or at another bit width.
public struct FrozenLayerError: Error, CustomStringConvertible, LocalizedError {
    public let path: String
    public var description: String { "\(path): FP weights were released by freeze(); reload the model to change its quantization" }
    public var errorDescription: String? { description }
}

/// `Linear` kernel that simulates MixDQ quantization: fake-quantized input (per tensor) and
/// weight (per output channel), then the FP matmul. With BOS-aware quantization the rows of token 0
/// are recomputed with the FP weight on the FP input.
///
/// Every matmul here is the same packed oneDNN fp32 kernel FP inference uses, so with quantization
/// off the output is bit-identical to `fp-infer`'s.
public final class FakeQuantLinearKernel: LinearKernel {
    public let state: QuantizedLayer
    /// The kernel the layer had before (restored by `QuantSimulator.uninstall()`; nil once frozen).
    private(set) var original: LinearKernel?
    /// The FP kernel, packed on first use; nil after `freeze()` for layers that no longer need it.
    private var fp: LinearKernel?
    private var fpReleased = false
    private var quantized: [Int: LinearKernel] = [:]

    public init(state: QuantizedLayer, fp: LinearKernel) {
        self.state = state
        self.original = fp
    }

    public func forward(_ x: Tensor) throws -> Tensor {
        guard state.weightEnabled || state.activationEnabled else { return try fpKernel().forward(x) }
        let channels = x.shape.last!
        let tokens = x.rank == 3 ? x.shape[1] : 1
        let bos = state.bosAware && x.rank == 3
        let input = state.activationEnabled
            ? state.quantizeActivation(x, channels: channels, skipRow: bos ? { $0 % tokens == 0 } : nil) : x
        let kernel: LinearKernel
        if state.weightEnabled {
            kernel = try quantizedKernel(bits: state.weightBits)
        } else {
            kernel = try fpKernel()
        }
        let y = try kernel.forward(input)
        if bos {
            // Token 0 (BOS) of every sample: the FP layer on the FP input. Running the FP kernel on
            // the same rows the FP model sees keeps these rows bit-identical to it (a 1-row GEMM
            // may accumulate in another order). The context has 77 tokens, so this is cheap.
            let reference = try fpKernel().forward(x)
            let out = y.shape.last!
            for b in 0..<x.shape[0] {
                (y.data + b * tokens * out).update(from: reference.data + b * tokens * out, count: out)
            }
        }
        return y
    }

    func fpKernel() throws -> LinearKernel {
        if let fp { return fp }
        guard !fpReleased, let w = state.layer.masterWeight else { throw FrozenLayerError(path: state.path) }
        let k = try DNNLMatmul(weight: w, bias: state.layer.bias, precision: .fp32)
        fp = k
        return k
    }

    func quantizedKernel(bits: Int) throws -> LinearKernel {
        if let k = quantized[bits] { return k }
        let k = try DNNLMatmul(weight: state.quantizedWeight(bits: bits), bias: state.layer.bias, precision: .fp32)
        if state.cachesQuantizedWeights { quantized[bits] = k }
        return k
    }

    /// Keeps only the quantized kernel of the current bit width (BOS layers keep FP for token 0).
    func freeze() throws {
        quantized = [state.weightBits: try DNNLMatmul(weight: state.quantizedWeight(bits: state.weightBits), bias: state.layer.bias,
                                                      precision: .fp32)]
        if state.bosAware { _ = try fpKernel() } else { fp = nil; fpReleased = true }
        original = nil
    }
}

/// `Conv2d` kernel that simulates MixDQ quantization; split shortcuts quantize the two
/// concatenated input parts (and the matching weight columns) with separate parameters.
public final class FakeQuantConv2dKernel: Conv2dKernel {
    public let state: QuantizedLayer
    private(set) var fp: Conv2dKernel?
    let stride: Int, padding: Int
    private var quantized: [Int: DNNLConvolution] = [:]

    public init(state: QuantizedLayer, fp: Conv2dKernel, stride: Int, padding: Int) {
        self.state = state
        self.fp = fp
        self.stride = stride
        self.padding = padding
    }

    public func forward(_ x: FeatureMap) throws -> FeatureMap {
        guard state.weightEnabled || state.activationEnabled else { return try fpKernel().forward(x) }
        let input = state.activationEnabled
            ? FeatureMap(state.quantizeActivation(x.tensor, channels: x.channels)) : x
        guard state.weightEnabled else { return try fpKernel().forward(input) }
        return try quantizedKernel(bits: state.weightBits).forward(input)
    }

    func fpKernel() throws -> Conv2dKernel {
        guard let fp else { throw FrozenLayerError(path: state.path) }
        return fp
    }

    func quantizedKernel(bits: Int) throws -> DNNLConvolution {
        if let k = quantized[bits] { return k }
        let k = try DNNLConvolution(weight: state.quantizedWeight(bits: bits), bias: state.layer.bias,
                                stride: stride, padding: padding, precision: .fp32)
        if state.cachesQuantizedWeights { quantized[bits] = k }
        return k
    }

    func freeze() throws {
        let k = try DNNLConvolution(weight: state.quantizedWeight(bits: state.weightBits), bias: state.layer.bias,
                                stride: stride, padding: padding, precision: .fp32)
        quantized = [state.weightBits: k]
        fp = nil
    }
}
