import MixDQCompute

/// diffusers `Attention` (processor AttnProcessor2_0): q from x, k/v from the context (or x),
/// multi-head SDPA, `to_out.0`. UNet q/k/v have no bias; the VAE's do.
public final class AttentionBlock {
    public let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    public let heads: Int
    public let scale: Float?
    /// What the attention matmuls run in (the loader's `attentionPrecision`: the dense layers' unless set).
    public let precision: Precision

    public init(_ loader: ModuleLoader, queryDim: Int, contextDim: Int?, heads: Int, qkvBias: Bool = false,
                scale: Float? = nil) throws {
        let kvDim = contextDim ?? queryDim
        toQ = try loader.linear("to_q", in: queryDim, out: queryDim, bias: qkvBias)
        let kvRole: LayerRole = contextDim != nil ? .crossAttentionKeyValue : .plain
        toK = try loader.linear("to_k", in: kvDim, out: queryDim, bias: qkvBias, role: kvRole)
        toV = try loader.linear("to_v", in: kvDim, out: queryDim, bias: qkvBias, role: kvRole)
        toOut = try loader.linear("to_out.0", in: queryDim, out: queryDim)
        self.heads = heads
        self.scale = scale
        self.precision = loader.attentionPrecision
    }

    /// x `[B, N, C]`, context `[B, M, D]` (nil for self-attention) -> `[B, N, C]`; `residual` (the
    /// output's shape) is added by `to_out.0` itself.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, adding residual: Tensor? = nil) throws -> Tensor {
        // bf16 layers reading the same input share one rounded copy of it.
        let q: Tensor, k: Tensor, v: Tensor
        if let context {
            q = try toQ(x)
            let rounded = BF16Activation.shared(context, by: [toK, toV])
            k = try toK(context, sharing: rounded); v = try toV(context, sharing: rounded)
        } else {
            let rounded = BF16Activation.shared(x, by: [toQ, toK, toV])
            q = try toQ(x, sharing: rounded); k = try toK(x, sharing: rounded); v = try toV(x, sharing: rounded)
        }
        let o = try AttentionKernel.scaledDotProduct(q: q, k: k, v: v, heads: heads, scale: scale, precision: precision)
        if let residual { return try toOut(o, adding: residual) }
        return try toOut(o)
    }
}
