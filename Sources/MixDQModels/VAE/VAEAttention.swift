import MixDQCompute

/// diffusers `Attention` as the VAE mid block builds it (`_from_deprecated_attn_block`): GroupNorm
/// (eps 1e-6), one head of C channels, q/k/v/to_out.0 Linear with bias, scale 1/sqrt(C), residual added
/// (`residual_connection`, `rescale_output_factor` 1). Softmax runs in fp32 (the kernel always does).
public final class VAEAttention {
    public let groupNorm: GroupNorm
    public let attention: AttentionBlock

    public init(_ loader: ModuleLoader, channels: Int, groups: Int) throws {
        groupNorm = try loader.groupNorm("group_norm", groups: groups, channels: channels, eps: VAEConfig.normEps)
        // diffusers: heads = C / attention_head_dim with attention_head_dim = C; scale = dim_head**-0.5 in double.
        attention = try AttentionBlock(loader, queryDim: channels, contextDim: nil, heads: 1, qkvBias: true,
                                       scale: Float(1 / Double(channels).squareRoot()))
    }

    public func callAsFunction(_ x: FeatureMap) throws -> FeatureMap {
        let o = try attention(groupNorm(x).tokens)                    // [B,HW,C]; NHWC tokens = diffusers' view+transpose
        Ops.addInPlace(o, x.tensor)                               // + residual
        return FeatureMap(tokens: o, height: x.height, width: x.width)   // [B,H,W,C]
    }
}
