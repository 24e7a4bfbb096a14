import MixDQCompute

/// diffusers `BasicTransformerBlock` (layer_norm): self-attention, cross-attention, GEGLU FF, each pre-LN + residual.
public final class BasicTransformerBlock {
    public let norm1: LayerNorm, attn1: AttentionBlock
    public let norm2: LayerNorm, attn2: AttentionBlock
    public let norm3: LayerNorm, ff: FeedForward

    public init(_ loader: ModuleLoader, dim: Int, heads: Int, contextDim: Int) throws {
        // LayerNorm eps stays at torch's default 1e-5: diffusers does not pass norm_eps here.
        norm1 = try loader.layerNorm("norm1", channels: dim, eps: 1e-5)
        attn1 = try AttentionBlock(loader.child("attn1"), queryDim: dim, contextDim: nil, heads: heads)
        norm2 = try loader.layerNorm("norm2", channels: dim, eps: 1e-5)
        attn2 = try AttentionBlock(loader.child("attn2"), queryDim: dim, contextDim: contextDim, heads: heads)
        norm3 = try loader.layerNorm("norm3", channels: dim, eps: 1e-5)
        ff = try FeedForward(loader.child("ff"), dim: dim)
    }

    public func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        // Each residual add goes through the branch's last Linear (to_out.0, net.2): a kernel that
        // can fuse it (an integer epilogue) does.
        var h = x                                                    // [B, N, C]
        h = try attn1(norm1(h), adding: h)
        h = try attn2(norm2(h), context: context, adding: h)
        h = try ff(norm3(h), adding: h)
        return h
    }
}
