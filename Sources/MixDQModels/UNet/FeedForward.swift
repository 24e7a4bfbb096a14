import MixDQCompute

/// diffusers `FeedForward` with GEGLU: `net.2(a * GELU(gate))` where `net.0.proj` gives `[a | gate]`.
public final class FeedForward {
    public let proj: Linear, out: Linear
    public init(_ loader: ModuleLoader, dim: Int, mult: Int = 4) throws {
        let inner = dim * mult
        proj = try loader.linear("net.0.proj", in: dim, out: inner * 2)   // net.1 is dropout
        out = try loader.linear("net.2", in: inner, out: dim)
    }
    /// GEGLU goes to `net.2`, which fuses it where its kernel can (the integer kernel's quantizer).
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try out(gegluOf: try proj(x)) }
    /// `self(x) + residual`, the add done by `net.2` (fused where its kernel can).
    public func callAsFunction(_ x: Tensor, adding residual: Tensor) throws -> Tensor {
        try out(gegluOf: try proj(x), adding: residual)
    }
}
