import MixDQCompute

/// diffusers `DownBlock2D` (no attentions) and `CrossAttnDownBlock2D` (resnet + transformer pairs).
public final class UNetDownBlock {
    public let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]
    public let downsampler: Downsample2D?

    public init(_ loader: ModuleLoader, type: String, in inChannels: Int, out outChannels: Int, layers: Int,
                timeEmbedDim: Int, groups: Int, eps: Float, heads: Int, depth: Int, contextDim: Int,
                linearProjection: Bool, addDownsample: Bool, downsamplePadding: Int) throws {
        resnets = try (0..<layers).map {
            try ResnetBlock2D(loader.child("resnets.\($0)"), in: $0 == 0 ? inChannels : outChannels, out: outChannels,
                              timeEmbedDim: timeEmbedDim, groups: groups, eps: eps)
        }
        attentions = type == "CrossAttnDownBlock2D" ? try (0..<layers).map {
            try Transformer2DModel(loader.child("attentions.\($0)"), channels: outChannels, heads: heads, depth: depth,
                                   contextDim: contextDim, groups: groups, linearProjection: linearProjection)
        } : []
        downsampler = addDownsample ? try Downsample2D(loader.child("downsamplers.0"), channels: outChannels,
                                                       padding: downsamplePadding) : nil
    }

    /// Returns the block output and the tensors it pushes onto the skip stack, in push order.
    public func callAsFunction(_ x: FeatureMap, emb: Tensor, context: Tensor) throws -> (FeatureMap, [FeatureMap]) {
        var h = x
        var skips: [FeatureMap] = []
        for (i, resnet) in resnets.enumerated() {
            h = try resnet(h, emb: emb)
            if !attentions.isEmpty { h = try attentions[i](h, context: context) }
            skips.append(h)
        }
        if let downsampler { h = try downsampler(h); skips.append(h) }
        return (h, skips)
    }
}
