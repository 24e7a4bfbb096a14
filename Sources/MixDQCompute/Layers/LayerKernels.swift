/// What a `Linear` runs: `y = x W^T + b` over the last axis of `x`.
///
/// This and `Conv2dKernel` are the single place where precision and quantization plug in:
/// fp32 (OpenBLAS), bf16 (oneDNN), MixDQ fake quantization, and later INT8 and packed INT4.
public protocol LinearKernel: AnyObject {
    func forward(_ x: Tensor) throws -> Tensor
}

/// What a `Conv2d` runs on an NHWC feature map.
public protocol Conv2dKernel: AnyObject {
    func forward(_ x: FeatureMap) throws -> FeatureMap
}

extension DNNLConvolution: Conv2dKernel {}

/// A quantization site: every Conv2d and Linear of a model, identified by its diffusers path.
public protocol WeightLayer: AnyObject {
    /// The diffusers / transformers module path, e.g. `down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k`.
    var path: String { get }
    var role: LayerRole { get }
    /// The fp32 weight in PyTorch layout (`[out, in]` or `[out, in, k, k]`), nil once released.
    var masterWeight: Tensor? { get }
    var bias: Tensor? { get }
    var parameterCount: Int { get }
    /// Switches the fp kernel (fp32 / bf16). Quantized kernels are installed by MixDQQuant.
    func usePrecision(_ precision: Precision) throws
    /// Drops the layer's reference to its fp32 weight (a quantized kernel holds its own copy).
    func releaseMasterWeight()
}

/// What the model knows about a layer that a quantizer needs.
public enum LayerRole: Equatable, Sendable {
    case plain
    /// `attn2.to_k` / `attn2.to_v`: the input is the text context `[B, 77, D]` whose token 0 (BOS)
    /// is an identical, huge outlier for every prompt (MixDQ's BOS-aware quantization).
    case crossAttentionKeyValue
    /// An up-block `conv_shortcut` whose input is `concat(h, skip)`: the first `split` channels
    /// come from the upsampled hidden state, the rest from the skip connection.
    case concatShortcut(split: Int)
}
