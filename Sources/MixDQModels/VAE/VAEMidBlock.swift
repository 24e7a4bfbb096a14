import MixDQCompute

/// diffusers `UNetMidBlock2D` as the VAE uses it: resnet, attention (unless `mid_block_add_attention`
/// is false), resnet; no time embedding, GroupNorm eps 1e-6.
public final class VAEMidBlock {
    public let resnets: [ResnetBlock2D]
    public let attention: VAEAttention?

    public init(_ loader: ModuleLoader, channels: Int, groups: Int, addAttention: Bool) throws {
        resnets = try (0..<2).map {
            try ResnetBlock2D(loader.child("resnets.\($0)"), in: channels, out: channels, timeEmbedDim: nil,
                              groups: groups, eps: VAEConfig.normEps)
        }
        attention = addAttention ? try VAEAttention(loader.child("attentions.0"), channels: channels, groups: groups) : nil
    }

    public func callAsFunction(_ x: FeatureMap) throws -> FeatureMap {
        var h = try resnets[0](x, emb: nil)                           // [B,h,w,C]
        if let attention { h = try attention(h) }                     // [B,h,w,C]
        return try resnets[1](h, emb: nil)                            // [B,h,w,C]
    }
}
