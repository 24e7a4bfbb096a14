import MixDQCompute

/// `Linear` kernel that simulates MixDQ quantization: fake-quantized input (per tensor) and
/// weight (per output channel), then the FP GEMM. With BOS-aware quantization the rows of token 0
/// are recomputed with the FP weight on the FP input.
public final class FakeQuantLinearKernel: LinearKernel {
    public let state: QuantizedLayer
    let fp: LinearKernel
    private var quantized: [Int: BLASLinear] = [:]

    public init(state: QuantizedLayer, fp: LinearKernel) {
        self.state = state
        self.fp = fp
    }

    public func forward(_ x: Tensor) -> Tensor {
        guard state.weightEnabled || state.activationEnabled else { return fp.forward(x) }
        let channels = x.shape.last!
        let tokens = x.rank == 3 ? x.shape[1] : 1
        let bos = state.bosAware && x.rank == 3
        let input = state.activationEnabled
            ? state.quantizeActivation(x, channels: channels, skipRow: bos ? { $0 % tokens == 0 } : nil) : x
        let kernel: LinearKernel
        if state.weightEnabled {
            let bits = state.weightBits
            if quantized[bits] == nil { quantized[bits] = BLASLinear(weight: state.quantizedWeight(bits: bits), bias: state.layer.bias) }
            kernel = quantized[bits]!
        } else {
            kernel = fp
        }
        let y = kernel.forward(input)
        if bos {
            // Token 0 (BOS) of every sample: the FP layer on the FP input. Running the FP kernel on
            // the same rows the FP model sees keeps these rows bit-identical to it (a 1-row GEMM
            // may accumulate in another order). The context has 77 tokens, so this is cheap.
            let reference = fp.forward(x)
            let out = y.shape.last!
            for b in 0..<x.shape[0] {
                (y.data + b * tokens * out).update(from: reference.data + b * tokens * out, count: out)
            }
        }
        return y
    }
}

/// `Conv2d` kernel that simulates MixDQ quantization; split shortcuts quantize the two
/// concatenated input parts (and the matching weight columns) with separate parameters.
public final class FakeQuantConv2dKernel: Conv2dKernel {
    public let state: QuantizedLayer
    let fp: Conv2dKernel
    let stride: Int, padding: Int
    private var quantized: [Int: DNNLConvolution] = [:]

    public init(state: QuantizedLayer, fp: Conv2dKernel, stride: Int, padding: Int) {
        self.state = state
        self.fp = fp
        self.stride = stride
        self.padding = padding
    }

    public func forward(_ x: FeatureMap) -> FeatureMap {
        guard state.weightEnabled || state.activationEnabled else { return fp.forward(x) }
        let input = state.activationEnabled
            ? FeatureMap(state.quantizeActivation(x.tensor, channels: x.channels)) : x
        guard state.weightEnabled else { return fp.forward(input) }
        let bits = state.weightBits
        if quantized[bits] == nil {
            let conv = DNNLConvolution(weight: state.quantizedWeight(bits: bits), bias: state.layer.bias,
                                       stride: stride, padding: padding, precision: .fp32)
            quantized[bits] = conv
        }
        return quantized[bits]!.forward(input)
    }
}
