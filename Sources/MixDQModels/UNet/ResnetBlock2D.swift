import MixDQCompute

/// diffusers `ResnetBlock2D` (UNet and VAE): GN-SiLU-conv, time projection, GN-SiLU-conv, shortcut.
public final class ResnetBlock2D {
    public let norm1: GroupNorm, conv1: Conv2d, norm2: GroupNorm, conv2: Conv2d
    public let timeEmbProj: Linear?
    public let convShortcut: Conv2d?

    /// `timeEmbedDim` nil builds the VAE variant (no `time_emb_proj`).
    public init(_ loader: ModuleLoader, in inChannels: Int, out outChannels: Int, timeEmbedDim: Int?,
                groups: Int, eps: Float, shortcutRole: LayerRole = .plain) throws {
        norm1 = try loader.groupNorm("norm1", groups: groups, channels: inChannels, eps: eps)
        conv1 = try loader.conv("conv1", in: inChannels, out: outChannels, kernel: 3, padding: 1)
        timeEmbProj = try timeEmbedDim.map { try loader.linear("time_emb_proj", in: $0, out: outChannels) }
        norm2 = try loader.groupNorm("norm2", groups: groups, channels: outChannels, eps: eps)
        conv2 = try loader.conv("conv2", in: outChannels, out: outChannels, kernel: 3, padding: 1)
        convShortcut = inChannels != outChannels
            ? try loader.conv("conv_shortcut", in: inChannels, out: outChannels, kernel: 1, role: shortcutRole) : nil
    }

    /// `emb` is the `[B, time_embed_dim]` embedding (SiLU is applied here, per block, as diffusers does).
    public func callAsFunction(_ x: FeatureMap, emb: Tensor?) throws -> FeatureMap {
        let h = try conv1(norm1(x, silu: true))                       // [B,H,W,Cout]
        if let proj = timeEmbProj, let emb {
            Ops.addChannelVector(h, try proj(Ops.silu(emb)))          // + time_emb_proj(SiLU(emb))[:, None, None, :]
        }
        // dropout is identity at inference; the residual add goes through conv2 (fused where its kernel can).
        let residual = try convShortcut.map { try $0(x) } ?? x
        return try conv2(norm2(h, silu: true), adding: residual)
    }
}
