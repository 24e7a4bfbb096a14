import MixDQCompute

/// What one scheduler step produces.
public struct SchedulerStepOutput {
    /// x_{t-1}, the next sample.
    public let prevSample: Tensor
    /// The predicted denoised sample x_0 at this step.
    public let predOriginalSample: Tensor
}

/// A sampler with its timesteps already set (diffusers' `set_timesteps` + `set_begin_index(0)`).
///
/// Steps are addressed by index (0 ..< timesteps.count), which is what the pipeline's
/// `_step_index` counter does; `timesteps[i]` is the float value the UNet receives.
public protocol Scheduler {
    var config: SchedulerConfig { get }
    var numInferenceSteps: Int { get }
    /// Model timesteps, e.g. [999, 749, 499, 249] for SDXL-Turbo with 4 steps.
    var timesteps: [Float] { get }
    /// One more than the timesteps: the noise level before each step, then the final one (0).
    var sigmas: [Float] { get }
    /// Multiplies the initial `randn` latents.
    var initNoiseSigma: Float { get }
    /// `scale_model_input`: the UNet input at step `stepIndex`.
    func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor
    /// One denoising step. Ancestral samplers draw noise of `modelOutput.shape` from `noise`.
    func stepOutput<N: NoiseSource>(modelOutput: Tensor, stepIndex: Int, sample: Tensor, noise: inout N) -> SchedulerStepOutput
}

extension Scheduler {
    /// One denoising step, returning only the next sample.
    public func step<N: NoiseSource>(modelOutput: Tensor, stepIndex: Int, sample: Tensor, noise: inout N) -> Tensor {
        stepOutput(modelOutput: modelOutput, stepIndex: stepIndex, sample: sample, noise: &noise).prevSample
    }

    /// `sample / sqrt(σ_i² + 1)` in float32, as diffusers' `scale_model_input` for Euler samplers.
    func eulerScaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        precondition(sigmas.indices.contains(stepIndex), "step index \(stepIndex) out of range 0..<\(timesteps.count)")
        let sigma = sigmas[stepIndex]
        let denom = (sigma * sigma + 1).squareRoot()
        return SchedulerElementwise.map(sample) { $0 / denom }
    }

    /// x0 for `prediction_type` at noise level `sigma` (float32, diffusers' operation order; the
    /// Euler step then uses it the same way whatever the type).
    func predictOriginal(modelOutput: Tensor, sample: Tensor, sigma: Float) -> Tensor {
        switch config.predictionType {
        case .epsilon:
            // sample - sigma * model_output
            return SchedulerElementwise.zip(sample, modelOutput) { x, e in x - sigma * e }
        case .vPrediction:
            // model_output * (-sigma / (sigma**2 + 1) ** 0.5) + (sample / (sigma**2 + 1))
            let s2p1 = sigma * sigma + 1
            let c = -sigma / s2p1.squareRoot()
            return SchedulerElementwise.zip(sample, modelOutput) { x, v in v * c + x / s2p1 }
        case .sample:
            // pred_original_sample = model_output (EulerDiscreteScheduler; diffusers' ancestral
            // scheduler raises NotImplementedError here, mixdq uses the same definition for both)
            return SchedulerElementwise.map(modelOutput) { $0 }
        }
    }
}

/// Shape-checked float32 loops with no fused multiply-adds, so each operation rounds like the
/// separate torch kernels it mirrors.
enum SchedulerElementwise {
    static func map(_ a: Tensor, _ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: a.shape)
        let src = a.data, dst = out.data
        for i in 0..<a.count { dst[i] = f(src[i]) }
        return out
    }

    static func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape, "shape mismatch: \(a.shape) vs \(b.shape)")
        let out = Tensor(uninitializedShape: a.shape)
        let pa = a.data, pb = b.data, dst = out.data
        for i in 0..<a.count { dst[i] = f(pa[i], pb[i]) }
        return out
    }
}

/// Shared by both Euler schedulers: timesteps and sigmas for N inference steps.
struct EulerSchedule {
    let timesteps: [Float]
    let sigmas: [Float]
    let initNoiseSigma: Float

    init(config: SchedulerConfig, numInferenceSteps n: Int, finalSigma: (NoiseSchedule) -> Float) throws {
        guard n >= 1, n <= config.numTrainTimesteps else { throw SchedulerError.invalidStepCount(n) }
        let schedule = NoiseSchedule(config: config)
        timesteps = config.timestepSpacing.timesteps(numInferenceSteps: n, numTrainTimesteps: config.numTrainTimesteps,
                                                     stepsOffset: config.stepsOffset)
        // np.interp in float64, then .astype(np.float32) together with the appended final sigma
        sigmas = timesteps.map { Float(schedule.interpolatedSigma(at: Double($0))) } + [finalSigma(schedule)]
        let maxSigma = sigmas.max() ?? 0
        switch config.timestepSpacing {
        case .linspace, .trailing:
            initNoiseSigma = maxSigma
        case .leading:
            initNoiseSigma = (maxSigma * maxSigma + 1).squareRoot()
        }
    }
}
