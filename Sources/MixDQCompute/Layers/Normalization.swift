import CKernels

/// `torch.nn.GroupNorm` on NHWC maps, statistics in double (fp32 in, fp32 out).
public final class GroupNorm: @unchecked Sendable {
    public let groups: Int, channels: Int, eps: Float
    public let weight: Tensor, bias: Tensor
    public init(groups: Int, channels: Int, eps: Float, weight: Tensor, bias: Tensor) {
        precondition(channels % groups == 0, "GroupNorm: \(channels) channels are not divisible into \(groups) groups")
        self.groups = groups; self.channels = channels; self.eps = eps; self.weight = weight; self.bias = bias
    }
    /// `silu: true` fuses the SiLU that follows every ResNet/VAE norm.
    public func callAsFunction(_ x: FeatureMap, silu: Bool = false) -> FeatureMap {
        OpProfiler.measure("group_norm") {
            let y = FeatureMap(batch: x.batch, height: x.height, width: x.width, channels: x.channels)
            mdq_group_norm_nhwc(x.tensor.data, y.tensor.data, x.batch, x.pixels, x.channels, groups, eps,
                                weight.data, bias.data, silu ? 1 : 0)
            return y
        }
    }
}

/// `torch.nn.LayerNorm` over the last axis.
public final class LayerNorm: @unchecked Sendable {
    public let channels: Int, eps: Float
    public let weight: Tensor, bias: Tensor
    public init(channels: Int, eps: Float, weight: Tensor, bias: Tensor) {
        self.channels = channels; self.eps = eps; self.weight = weight; self.bias = bias
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == channels)
        return OpProfiler.measure("layer_norm") {
            let y = Tensor(uninitializedShape: x.shape)
            RowParallel.run(rows: x.count / channels, rowLength: channels) { r in
                mdq_layer_norm(x.data + r.lowerBound * channels, y.data + r.lowerBound * channels, r.count, channels, eps,
                               weight.data, bias.data)
            }
            return y
        }
    }
}
