import MixDQCompute

/// transformers `CLIPMLP`: fc1 -> activation (quick_gelu for TE1, exact GELU for TE2) -> fc2.
public final class CLIPMLP {
    public let fc1: Linear, fc2: Linear
    public let activation: CLIPActivation

    public init(_ loader: ModuleLoader, dim: Int, hidden: Int, activation: CLIPActivation) throws {
        fc1 = try loader.linear("fc1", in: dim, out: hidden)
        fc2 = try loader.linear("fc2", in: hidden, out: dim)
        self.activation = activation
    }

    /// x `[B, T, D]` -> `[B, T, D]`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let h = try fc1(x)                                                   // [B, T, F]
        let a = activation == .quickGelu ? Ops.quickGelu(h) : Ops.geluErf(h) // [B, T, F]
        return try fc2(a)                                                    // [B, T, D]
    }
}
