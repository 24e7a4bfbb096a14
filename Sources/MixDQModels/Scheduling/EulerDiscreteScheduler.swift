import MixDQCompute

/// diffusers' `EulerDiscreteScheduler` with `s_churn = 0` (the default): a deterministic Euler
/// step from σ_i to σ_{i+1}. It draws no noise; the `noise` argument is left untouched.
public struct EulerDiscreteScheduler: Scheduler {
    public let config: SchedulerConfig
    public let numInferenceSteps: Int
    public let timesteps: [Float]
    public let sigmas: [Float]
    public let initNoiseSigma: Float

    public init(config: SchedulerConfig, numInferenceSteps: Int) throws {
        self.config = config
        self.numInferenceSteps = numInferenceSteps
        let finalType = config.finalSigmasType
        let s = try EulerSchedule(config: config, numInferenceSteps: numInferenceSteps) { schedule in
            // "sigma_min" appends ((1 - ac[0]) / ac[0]) ** 0.5, i.e. σ(0); "zero" appends 0
            finalType == .sigmaMin ? schedule.sigmaTable[0] : 0
        }
        timesteps = s.timesteps
        sigmas = s.sigmas
        initNoiseSigma = s.initNoiseSigma
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        eulerScaleModelInput(sample, stepIndex: stepIndex)
    }

    public func stepOutput<N: NoiseSource>(modelOutput: Tensor, stepIndex i: Int, sample: Tensor, noise: inout N) -> SchedulerStepOutput {
        precondition(timesteps.indices.contains(i), "step index \(i) out of range 0..<\(timesteps.count)")
        precondition(modelOutput.shape == sample.shape, "model output \(modelOutput.shape) vs sample \(sample.shape)")
        let sigmaHat = sigmas[i] * 1  // sigma * (gamma + 1) with gamma = 0
        let x0 = predictOriginal(modelOutput: modelOutput, sample: sample, sigma: sigmaHat)
        let dt = sigmas[i + 1] - sigmaHat
        let prev = SchedulerElementwise.zip(sample, x0) { x, p in
            let derivative = (x - p) / sigmaHat
            return x + derivative * dt
        }
        return SchedulerStepOutput(prevSample: prev, predOriginalSample: x0)
    }
}
