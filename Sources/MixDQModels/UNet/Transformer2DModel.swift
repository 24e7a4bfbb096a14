import MixDQCompute

/// diffusers `Transformer2DModel` (continuous input): GN(eps 1e-6) -> proj_in -> blocks -> proj_out -> + x.
///
/// SDXL projects with Linear layers (`use_linear_projection`), SD1.5 with 1x1 convolutions; on
/// NHWC data both act per pixel, so only the module type (and its quantization site) differs.
public final class Transformer2DModel {
    public let norm: GroupNorm
    public let projInLinear: Linear?, projOutLinear: Linear?
    public let projInConv: Conv2d?, projOutConv: Conv2d?
    public let blocks: [BasicTransformerBlock]

    public init(_ loader: ModuleLoader, channels: Int, heads: Int, depth: Int, contextDim: Int,
                groups: Int, linearProjection: Bool) throws {
        norm = try loader.groupNorm("norm", groups: groups, channels: channels, eps: 1e-6)  // hard-coded in diffusers
        if linearProjection {
            projInLinear = try loader.linear("proj_in", in: channels, out: channels)
            projInConv = nil
        } else {
            projInConv = try loader.conv("proj_in", in: channels, out: channels, kernel: 1)
            projInLinear = nil
        }
        blocks = try (0..<depth).map {
            try BasicTransformerBlock(loader.child("transformer_blocks.\($0)"), dim: channels, heads: heads, contextDim: contextDim)
        }
        if linearProjection {
            projOutLinear = try loader.linear("proj_out", in: channels, out: channels)
            projOutConv = nil
        } else {
            projOutConv = try loader.conv("proj_out", in: channels, out: channels, kernel: 1)
            projOutLinear = nil
        }
    }

    public func callAsFunction(_ x: FeatureMap, context: Tensor) throws -> FeatureMap {
        let n = norm(x)                                                          // [B,H,W,C]
        // Exactly one of the linear / conv projections exists (config use_linear_projection).
        var h: Tensor
        if let projInLinear { h = try projInLinear(n.tokens) } else if let projInConv { h = try projInConv(n).tokens } else { h = n.tokens }  // [B,HW,C]
        for block in blocks { h = try block(h, context: context) }
        // The residual (+ x) goes through proj_out (fused where its kernel can).
        if let projOutLinear {
            return FeatureMap(tokens: try projOutLinear(h, adding: x.tokens), height: x.height, width: x.width)
        } else if let projOutConv {
            return try projOutConv(FeatureMap(tokens: h, height: x.height, width: x.width), adding: x)
        }
        let o = FeatureMap(tokens: h, height: x.height, width: x.width)
        Ops.addInPlace(o.tensor, x.tensor)
        return o
    }
}
