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

/// diffusers `TimestepEmbedding`: `linear_2(SiLU(linear_1(x)))`, with `x + cond_proj(condition)`
/// first when the model has a condition projection (`time_cond_proj_dim`: LCM-distilled UNets
/// take the guidance scale this way).
public final class TimestepEmbedding {
    public let linear1: Linear, linear2: Linear
    public let condProj: Linear?
    public init(_ loader: ModuleLoader, in inDim: Int, out outDim: Int, condProjDim: Int? = nil) throws {
        condProj = try condProjDim.map { try loader.linear("cond_proj", in: $0, out: inDim, bias: false) }
        linear1 = try loader.linear("linear_1", in: inDim, out: outDim)
        linear2 = try loader.linear("linear_2", in: outDim, out: outDim)
    }
    public func callAsFunction(_ x: Tensor, condition: Tensor? = nil) throws -> Tensor {
        var input = x
        if let condition, let condProj { input = Ops.add(x, try condProj(condition)) }
        return try linear2(Ops.silu(try linear1(input)))
    }
}

/// diffusers' `get_guidance_scale_embedding(w, embedding_dim)` (StableDiffusionPipeline,
/// LatentConsistencyModelPipeline): sinusoids of `1000 w`, sines first, zero-padded to an odd
/// width. The pipelines pass `w = guidance_scale - 1`. float32 in torch's operation order.
public enum GuidanceScaleEmbedding {
    public static func embedding(_ w: [Float], dim: Int) -> Tensor {
        let half = dim / 2
        let out = Tensor(zeros: [w.count, dim])
        // emb = log(10000) / (half - 1); exp(arange(half) * -emb)
        let step = Float(log(10000.0)) / Float(half - 1)
        let freqs = (0..<half).map { expf(Float($0) * -step) }
        for (b, v) in w.enumerated() {
            let scaled = v * 1000
            let row = out.data + b * dim
            for i in 0..<half {
                let a = scaled * freqs[i]
                row[i] = sinf(a)
                row[half + i] = cosf(a)
            }
        }
        return out
    }
}
