import MixDQCompute

/// diffusers `UNetMidBlock2DCrossAttn`: resnet, transformer, resnet.
public final class UNetMidBlock2DCrossAttn {
    public let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]

    public init(_ loader: ModuleLoader, channels: Int, timeEmbedDim: Int, groups: Int, eps: Float, heads: Int,
                depth: Int, contextDim: Int, linearProjection: Bool) throws {
        resnets = try (0..<2).map {
            try ResnetBlock2D(loader.child("resnets.\($0)"), in: channels, out: channels, timeEmbedDim: timeEmbedDim,
                              groups: groups, eps: eps)
        }
        attentions = [try Transformer2DModel(loader.child("attentions.0"), channels: channels, heads: heads, depth: depth,
                                             contextDim: contextDim, groups: groups, linearProjection: linearProjection)]
    }

    public func callAsFunction(_ x: FeatureMap, emb: Tensor, context: Tensor) throws -> FeatureMap {
        var h = try resnets[0](x, emb: emb)
        h = try attentions[0](h, context: context)
        return try resnets[1](h, emb: emb)
    }
}
