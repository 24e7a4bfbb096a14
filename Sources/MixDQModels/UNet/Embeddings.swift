import Foundation
import MixDQCompute

/// diffusers `get_timestep_embedding` / `Timesteps`: `[B] -> [B, dim]` sinusoids in fp32.
///
/// Frequencies are `exp(-ln(10000) * i / (half - shift))`; with `flipSinToCos` the cosines come
/// first (SDXL and SD1.5 both set it).
public struct SinusoidalEmbedding: Sendable {
    public let dim: Int, flipSinToCos: Bool, freqShift: Int
    public init(dim: Int, flipSinToCos: Bool, freqShift: Int) {
        self.dim = dim; self.flipSinToCos = flipSinToCos; self.freqShift = freqShift
    }

    public func callAsFunction(_ values: [Float]) -> Tensor {
        let half = dim / 2
        let out = Tensor(zeros: [values.count, dim])
        // Same fp32 operation order as torch: (-ln(10000) * i) / (half - shift), then exp.
        let negLog = Float(-log(10000.0))
        let freqs = (0..<half).map { expf((negLog * Float($0)) / Float(half - freqShift)) }
        for (b, t) in values.enumerated() {
            let row = out.data + b * dim
            for i in 0..<half {
                let a = t * freqs[i]
                let (s, c) = (sinf(a), cosf(a))
                if flipSinToCos { row[i] = c; row[half + i] = s } else { row[i] = s; row[half + i] = c }
            }
        }
        return out
    }
}

/// diffusers `TimestepEmbedding`: `linear_2(SiLU(linear_1(x)))`.
public final class TimestepEmbedding {
    public let linear1: Linear, linear2: Linear
    public init(_ loader: ModuleLoader, in inDim: Int, out outDim: Int) throws {
        linear1 = try loader.linear("linear_1", in: inDim, out: outDim)
        linear2 = try loader.linear("linear_2", in: outDim, out: outDim)
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try linear2(Ops.silu(try linear1(x))) }
}
