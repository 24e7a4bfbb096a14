import Foundation
import MixDQCompute

/// MixDQ's quantization simulated in fp32 (the original's fake quant): fake-quantized input per
/// tensor (per part for split shortcuts) and weight per output channel, then the FP kernel. Every
/// bit width and both switches (weight / activation) work, and they may change between calls: this
/// is the backend calibration (`ptq`), the search and `--backend fake` run on.
public struct FakeQuantBackend: QuantBackend {
    public init() {}
    public var name: String { "fake" }
    public func unsupportedReason(_ layer: QuantizedLayer) -> String? { nil }

    public func makeKernel(for layer: QuantizedLayer) throws -> InstalledKernel {
        switch layer.layer.geometry {
        case .linear: return .linear(FakeQuantLinearKernel(state: layer))
        case .conv2d(_, _, _, let stride, let padding):
            return .conv2d(FakeQuantConv2dKernel(state: layer, fp: layer.layer.fpKernel, stride: stride, padding: padding))
        }
    }
}

/// A frozen layer (FP weights dropped by `freeze()`) asked to run in FP or at another bit width.
public struct FrozenLayerError: Error, CustomStringConvertible, LocalizedError {
    public let path: String
    public var description: String { "\(path): FP weights were released by freeze(); reload the model to change its quantization" }
    public var errorDescription: String? { description }
}

/// `Linear` kernel that simulates MixDQ quantization: fake-quantized input (per tensor) and weight
/// (per output channel), then the FP matmul.
///
/// Every matmul here is the same packed oneDNN fp32 kernel FP inference uses, so with quantization
/// off the output is bit-identical to `fp-infer`'s.
public final class FakeQuantLinearKernel: RowExcludingLinearKernel {
    public let state: QuantizedLayer
    /// The FP kernel, packed on first use; nil after `freeze()` for layers that no longer need it.
    private var fp: LinearKernel?
    private var fpReleased = false
    private var quantized: [Int: LinearKernel] = [:]

    public init(state: QuantizedLayer) { self.state = state }

    public func forward(_ x: Tensor) throws -> Tensor { try forward(x, excluded: nil) }

    public func forward(_ x: Tensor, excludingRows excluded: (Int) -> Bool) throws -> Tensor {
        try withoutActuallyEscaping(excluded) { try forward(x, excluded: $0) }
    }

    private func forward(_ x: Tensor, excluded: ((Int) -> Bool)?) throws -> Tensor {
        guard state.weightEnabled || state.activationEnabled else { return try fpKernel().forward(x) }
        let input = state.activationEnabled
            ? try state.quantizeActivation(x, channels: x.shape.last ?? 0, skipRow: excluded) : x
        let kernel = state.weightEnabled ? try quantizedKernel(bits: state.weightBits) : try fpKernel()
        return try kernel.forward(input)
    }

    /// The FP path (also what BOS-aware layers compute token 0 with).
    public func fpKernel() throws -> LinearKernel {
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
    }
}

/// The FP path of a fake-quant Linear as a kernel of its own (what `Token0Outputs` computes with).
final class FakeQuantFPPath: LinearKernel {
    let fake: FakeQuantLinearKernel
    init(_ fake: FakeQuantLinearKernel) { self.fake = fake }
    func forward(_ x: Tensor) throws -> Tensor { try fake.fpKernel().forward(x) }
}

/// `Conv2d` kernel that simulates MixDQ quantization; split shortcuts quantize the two
/// concatenated input parts with separate parameters (weight columns too) and run one FP conv.
public final class FakeQuantConv2dKernel: Conv2dKernel {
    public let state: QuantizedLayer
    private(set) var fp: Conv2dKernel?
    let stride: Int, padding: Int
    private var quantized: [Int: DNNLConvolution] = [:]

    public init(state: QuantizedLayer, fp: InstalledKernel, stride: Int, padding: Int) {
        self.state = state
        if case .conv2d(let k) = fp { self.fp = k }
        self.stride = stride
        self.padding = padding
    }

    public func forward(_ x: FeatureMap) throws -> FeatureMap {
        guard state.weightEnabled || state.activationEnabled else { return try fpKernel().forward(x) }
        let input = state.activationEnabled
            ? FeatureMap(try state.quantizeActivation(x.tensor, channels: x.channels)) : x
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
