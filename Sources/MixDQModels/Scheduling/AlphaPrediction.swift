import MixDQCompute

/// x0 (and ε) from a model output at ᾱ_t, as DDIM and LCM compute them: float32 scalars and
/// element-wise operations in diffusers' order (no fused multiply-adds).
struct AlphaPrediction {
    let alphaProd: Float
    var betaProd: Float { 1 - alphaProd }

    /// The predicted original sample for `type`.
    func original(_ type: SchedulerConfig.PredictionType, modelOutput: Tensor, sample: Tensor) -> Tensor {
        let a = alphaProd.squareRoot(), b = betaProd.squareRoot()
        switch type {
        case .epsilon:
            // (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
            return SchedulerElementwise.zip(sample, modelOutput) { x, e in (x - b * e) / a }
        case .sample:
            return SchedulerElementwise.map(modelOutput) { $0 }
        case .vPrediction:
            // alpha_prod_t ** 0.5 * sample - beta_prod_t ** 0.5 * model_output
            return SchedulerElementwise.zip(sample, modelOutput) { x, v in a * x - b * v }
        }
    }

    /// The predicted noise for `type` given the (unclipped) x0.
    func epsilon(_ type: SchedulerConfig.PredictionType, modelOutput: Tensor, sample: Tensor, original: Tensor) -> Tensor {
        let a = alphaProd.squareRoot(), b = betaProd.squareRoot()
        switch type {
        case .epsilon:
            return modelOutput
        case .sample:
            // (sample - alpha_prod_t ** 0.5 * pred_original_sample) / beta_prod_t ** 0.5
            return SchedulerElementwise.zip(sample, original) { x, p in (x - a * p) / b }
        case .vPrediction:
            // alpha_prod_t ** 0.5 * model_output + beta_prod_t ** 0.5 * sample
            return SchedulerElementwise.zip(modelOutput, sample) { v, x in a * v + b * x }
        }
    }

    /// `clamp(-range, range)` when the config asks for it.
    static func clipped(_ x0: Tensor, _ config: SchedulerConfig) -> Tensor {
        guard config.clipSample else { return x0 }
        let r = Float(config.clipSampleRange)
        return SchedulerElementwise.map(x0) { min(max($0, -r), r) }
    }

}

/// The integer timesteps of a DDIM or LCM schedule with the ᾱ table they index.
struct AlphaTimesteps {
    let schedule: NoiseSchedule
    let integers: [Int]
    /// As the UNet receives them.
    let timesteps: [Float]
    /// σ = sqrt((1 - ᾱ) / ᾱ) at each timestep and a final 0: the noise levels, for the protocol's
    /// `sigmas` (DDIM and LCM step on ᾱ directly).
    let sigmas: [Float]
    let finalAlphaProd: Float

    /// Throws when a timestep falls outside the ᾱ table (a large steps_offset).
    init(config: SchedulerConfig, schedule: NoiseSchedule, integers: [Int]) throws {
        if let bad = integers.first(where: { $0 < 0 || $0 >= config.numTrainTimesteps }) {
            throw SchedulerError.timestepOutOfRange(timestep: bad, numTrainTimesteps: config.numTrainTimesteps)
        }
        self.schedule = schedule
        self.integers = integers
        timesteps = integers.map(Float.init)
        sigmas = integers.map { schedule.sigmaTable[$0] } + [0]
        finalAlphaProd = config.setAlphaToOne ? 1 : schedule.alphasCumprod[0]
    }

    /// ᾱ at `t`, or after the last step when t < 0.
    func alphaProd(_ t: Int) -> Float { t >= 0 ? schedule.alphasCumprod[t] : finalAlphaProd }
}
