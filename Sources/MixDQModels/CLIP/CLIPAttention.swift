import MixDQCompute

/// transformers `CLIPAttention` in the text tower: q/k/v/out projections with bias, causal multi-head
/// attention with scale 1/sqrt(head_dim) and an fp32 softmax. No padding mask: pad tokens are attended.
public final class CLIPAttention {
    public let kProj: Linear, vProj: Linear, qProj: Linear, outProj: Linear
    public let heads: Int

    public init(_ loader: ModuleLoader, dim: Int, heads: Int) throws {
        // Created in transformers' module order (k, v, q, out) so the registry lists layers as the state dict does.
        kProj = try loader.linear("k_proj", in: dim, out: dim)
        vProj = try loader.linear("v_proj", in: dim, out: dim)
        qProj = try loader.linear("q_proj", in: dim, out: dim)
        outProj = try loader.linear("out_proj", in: dim, out: dim)
        self.heads = heads
    }

    /// x `[B, T, D]` -> `[B, T, D]`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let q = try qProj(x), k = try kProj(x), v = try vProj(x)                                       // [B, T, D] each
        let a = try AttentionKernel.scaledDotProduct(q: q, k: k, v: v, heads: heads, causal: true) // [B, T, D]
        return try outProj(a)                                                                  // [B, T, D]
    }
}
