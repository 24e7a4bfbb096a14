import MixDQCompute

/// diffusers `UpBlock2D` and `CrossAttnUpBlock2D`: each resnet sees `concat(h, skip)` (h first).
///
/// The `conv_shortcut` of every resnet here is marked with its concat split point (the channels
/// of h), which MixDQ's split-shortcut quantization needs; it comes from the model, not a table.
public final class UNetUpBlock {
    public let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]
    public let upsampler: Upsample2D?

    public init(_ loader: ModuleLoader, type: String, in inChannels: Int, prevOut prevOutputChannels: Int,
                out outChannels: Int, layers: Int, timeEmbedDim: Int, groups: Int, eps: Float, heads: Int, depth: Int,
                contextDim: Int, linearProjection: Bool, addUpsample: Bool) throws {
        var resnets: [ResnetBlock2D] = []
        for j in 0..<layers {
            let skipChannels = j == layers - 1 ? inChannels : outChannels
            let hiddenChannels = j == 0 ? prevOutputChannels : outChannels
            let resnet = try ResnetBlock2D(loader.child("resnets.\(j)"), in: hiddenChannels + skipChannels,
                                           out: outChannels, timeEmbedDim: timeEmbedDim, groups: groups, eps: eps,
                                           shortcutRole: .concatShortcut(split: hiddenChannels))
            resnets.append(resnet)
        }
        self.resnets = resnets
        attentions = type == "CrossAttnUpBlock2D" ? try (0..<layers).map {
            try Transformer2DModel(loader.child("attentions.\($0)"), channels: outChannels, heads: heads, depth: depth,
                                   contextDim: contextDim, groups: groups, linearProjection: linearProjection)
        } : []
        upsampler = addUpsample ? try Upsample2D(loader.child("upsamplers.0"), channels: outChannels) : nil
    }

    /// Pops one skip per resnet from the end of `skips`. `upsampleSize` forces the upsampler's
    /// output size when the latent is not a multiple of the total downsampling factor.
    public func callAsFunction(_ x: FeatureMap, skips: inout [FeatureMap], emb: Tensor, context: Tensor,
                               upsampleSize: (Int, Int)?) throws -> FeatureMap {
        var h = x
        for (i, resnet) in resnets.enumerated() {
            let skip = skips.removeLast()
            h = try resnet(Ops.concatChannels(h, skip), emb: emb)
            if !attentions.isEmpty { h = try attentions[i](h, context: context) }
        }
        if let upsampler { h = try upsampler(h, size: upsampleSize) }
        return h
    }
}
