import MixDQCompute

/// diffusers `UpDecoderBlock2D`: `layers_per_block + 1` resnets (the first maps in -> out, with a
/// 1x1 `conv_shortcut` when they differ), then nearest 2x + 3x3 conv unless it is the last block.
public final class UpDecoderBlock2D {
    public let resnets: [ResnetBlock2D]
    public let upsampler: Upsample2D?

    public init(_ loader: ModuleLoader, in inChannels: Int, out outChannels: Int, layers: Int, groups: Int,
                addUpsample: Bool) throws {
        resnets = try (0..<layers).map {
            try ResnetBlock2D(loader.child("resnets.\($0)"), in: $0 == 0 ? inChannels : outChannels, out: outChannels,
                              timeEmbedDim: nil, groups: groups, eps: VAEConfig.normEps)
        }
        upsampler = addUpsample ? try Upsample2D(loader.child("upsamplers.0"), channels: outChannels) : nil
    }

    public func callAsFunction(_ x: FeatureMap) throws -> FeatureMap {
        var h = x
        for resnet in resnets { h = try resnet(h, emb: nil) }         // [B,H,W,Cout]
        if let upsampler { h = try upsampler(h) }                     // [B,2H,2W,Cout]
        return h
    }
}
