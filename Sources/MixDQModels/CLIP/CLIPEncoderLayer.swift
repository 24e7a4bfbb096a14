import MixDQCompute

/// transformers `CLIPEncoderLayer`: pre-LN self-attention and MLP, each with a residual.
public final class CLIPEncoderLayer {
    public let selfAttn: CLIPAttention, layerNorm1: LayerNorm
    public let mlp: CLIPMLP, layerNorm2: LayerNorm

    public init(_ loader: ModuleLoader, config: CLIPTextConfig) throws {
        let d = config.hiddenSize, eps = config.layerNormEps
        selfAttn = try CLIPAttention(loader.child("self_attn"), dim: d, heads: config.numAttentionHeads)
        layerNorm1 = try loader.layerNorm("layer_norm1", channels: d, eps: eps)
        mlp = try CLIPMLP(loader.child("mlp"), dim: d, hidden: config.intermediateSize, activation: config.hiddenAct)
        layerNorm2 = try loader.layerNorm("layer_norm2", channels: d, eps: eps)
    }

    /// x `[B, T, D]` -> `[B, T, D]`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let h = try selfAttn(layerNorm1(x)); Ops.addInPlace(h, x)   // [B, T, D]
        let y = try mlp(layerNorm2(h)); Ops.addInPlace(y, h)        // [B, T, D]
        return y
    }
}
