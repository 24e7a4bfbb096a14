import Foundation
import MixDQCompute

/// diffusers' `LCMScheduler` (latent consistency models, LCM-LoRA): N timesteps taken evenly by
/// index from the `original_inference_steps`-long distillation schedule; each step predicts x0,
/// applies the boundary-condition scalings (denoised = c_out · x0 + c_skip · x_t with σ_data = 0.5
/// and the timestep scaled by `timestep_scaling`), then, except after the last step, re-noises the
/// denoised sample to the next timestep with fresh noise.
public struct LCMScheduler: Scheduler {
    public let config: SchedulerConfig
    public let numInferenceSteps: Int
    public let initNoiseSigma: Float = 1
    let table: AlphaTimesteps
    public var timesteps: [Float] { table.timesteps }
    public var sigmas: [Float] { table.sigmas }

    public init(config: SchedulerConfig, numInferenceSteps n: Int) throws {
        guard n >= 1, n <= config.numTrainTimesteps else { throw SchedulerError.invalidStepCount(n) }
        let original = config.originalInferenceSteps
        guard n <= original else { throw SchedulerError.tooManyStepsForLCM(steps: n, originalInferenceSteps: original) }
        self.config = config
        numInferenceSteps = n
        // lcm_origin_timesteps = arange(1, original + 1) * (T // original) - 1, reversed; then the
        // entries at floor(np.linspace(0, len, N, endpoint=False)).
        let k = config.numTrainTimesteps / original
        let origin = (1...original).reversed().map { $0 * k - 1 }
        let step = Double(origin.count) / Double(n)
        table = try AlphaTimesteps(config: config, schedule: NoiseSchedule(config: config),
                                   integers: (0..<n).map { origin[Int((Double($0) * step).rounded(.down))] })
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample.copy() }

    /// (c_skip, c_out) at timestep t, in float32 as torch computes them from the int64 timestep.
    func boundaryScalings(_ t: Int) -> (skip: Float, out: Float) {
        let sigmaData: Float = 0.5
        let scaled = Float(t) * Float(config.timestepScaling)
        let denominator = scaled * scaled + sigmaData * sigmaData
        return (sigmaData * sigmaData / denominator, scaled / denominator.squareRoot())
    }

    public func stepOutput<N: NoiseSource>(modelOutput: Tensor, stepIndex i: Int, sample: Tensor, noise: inout N) -> SchedulerStepOutput {
        precondition(table.integers.indices.contains(i), "step index \(i) out of range 0..<\(table.integers.count)")
        let t = table.integers[i]
        let p = AlphaPrediction(alphaProd: table.alphaProd(t))
        let x0 = AlphaPrediction.clipped(p.original(config.predictionType, modelOutput: modelOutput, sample: sample), config)
        let c = boundaryScalings(t)
        let denoised = SchedulerElementwise.zip(x0, sample) { x, s in c.out * x + c.skip * s }
        guard i != numInferenceSteps - 1 else { return SchedulerStepOutput(prevSample: denoised, predOriginalSample: denoised) }
        let alphaPrev = table.alphaProd(table.integers[i + 1])
        let a = alphaPrev.squareRoot(), b = (1 - alphaPrev).squareRoot()
        let z = noise.randn(modelOutput.shape)
        let prev = SchedulerElementwise.zip(denoised, z) { d, e in a * d + b * e }
        return SchedulerStepOutput(prevSample: prev, predOriginalSample: denoised)
    }
}
