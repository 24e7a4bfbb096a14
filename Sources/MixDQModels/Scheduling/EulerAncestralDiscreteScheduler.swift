import MixDQCompute

/// diffusers' `EulerAncestralDiscreteScheduler` (SDXL-Turbo's sampler), sdxl-architecture.md §7.
///
/// Each step goes to σ_down deterministically, then adds fresh N(0,1)·σ_up noise drawn at every
/// step, including the last one where σ_up is 0 (this keeps the RNG stream aligned with torch).
public struct EulerAncestralDiscreteScheduler: Scheduler {
    public let config: SchedulerConfig
    public let numInferenceSteps: Int
    public let timesteps: [Float]
    public let sigmas: [Float]
    public let initNoiseSigma: Float

    public init(config: SchedulerConfig, numInferenceSteps: Int) throws {
        self.config = config
        self.numInferenceSteps = numInferenceSteps
        let s = try EulerSchedule(config: config, numInferenceSteps: numInferenceSteps) { _ in 0 }
        timesteps = s.timesteps
        sigmas = s.sigmas
        initNoiseSigma = s.initNoiseSigma
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        eulerScaleModelInput(sample, stepIndex: stepIndex)
    }

    /// (σ_up, σ_down) for the step from `sigmas[i]` to `sigmas[i+1]`, in float32 as torch does.
    public func ancestralSigmas(stepIndex i: Int) -> (up: Float, down: Float) {
        let from = sigmas[i], to = sigmas[i + 1]
        let from2 = from * from, to2 = to * to
        let up = (to2 * (from2 - to2) / from2).squareRoot()
        let down = (to2 - up * up).squareRoot()
        return (up, down)
    }

    public func stepOutput<N: NoiseSource>(modelOutput: Tensor, stepIndex i: Int, sample: Tensor, noise: inout N) -> SchedulerStepOutput {
        precondition(timesteps.indices.contains(i), "step index \(i) out of range 0..<\(timesteps.count)")
        precondition(modelOutput.shape == sample.shape, "model output \(modelOutput.shape) vs sample \(sample.shape)")
        let sigma = sigmas[i]
        let x0 = predictOriginal(modelOutput: modelOutput, sample: sample, sigma: sigma)
        let (up, down) = ancestralSigmas(stepIndex: i)
        let dt = down - sigma
        // derivative = (sample - x0) / sigma; prev = sample + derivative * dt
        let prev = SchedulerElementwise.zip(sample, x0) { x, p in
            let derivative = (x - p) / sigma
            return x + derivative * dt
        }
        let z = noise.randn(modelOutput.shape)
        let out = SchedulerElementwise.zip(prev, z) { p, n in p + n * up }
        return SchedulerStepOutput(prevSample: out, predOriginalSample: x0)
    }
}
