import Foundation
import MixDQCompute

/// diffusers' `DDIMScheduler` with eta = 0 (the pipelines' default): deterministic, draws no noise.
/// x_{t'} = sqrt(ᾱ_{t'}) · x0 + sqrt(1 - ᾱ_{t'}) · ε with t' = t - T / N (ᾱ after the last step is
/// 1 with `set_alpha_to_one`, else ᾱ(0)).
public struct DDIMScheduler: Scheduler {
    public let config: SchedulerConfig
    public let numInferenceSteps: Int
    public let initNoiseSigma: Float = 1
    let table: AlphaTimesteps
    public var timesteps: [Float] { table.timesteps }
    public var sigmas: [Float] { table.sigmas }

    public init(config: SchedulerConfig, numInferenceSteps n: Int) throws {
        guard n >= 1, n <= config.numTrainTimesteps else { throw SchedulerError.invalidStepCount(n) }
        self.config = config
        numInferenceSteps = n
        let raw: [Int]
        switch config.timestepSpacing {
        case .linspace:
            // np.linspace(0, T - 1, N).round()[::-1]
            let stop = Double(config.numTrainTimesteps - 1)
            raw = (0..<n).reversed().map { i in
                (n > 1 ? (i == n - 1 ? stop : Double(i) * (stop / Double(n - 1))) : 0).rounded(.toNearestOrEven)
            }.map { Int($0) }
        case .leading, .trailing:
            raw = config.timestepSpacing.timesteps(numInferenceSteps: n, numTrainTimesteps: config.numTrainTimesteps,
                                                   stepsOffset: config.stepsOffset).map { Int($0) }
        }
        table = try AlphaTimesteps(config: config, schedule: NoiseSchedule(config: config), integers: raw)
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample.copy() }

    public func stepOutput<N: NoiseSource>(modelOutput: Tensor, stepIndex i: Int, sample: Tensor, noise: inout N) -> SchedulerStepOutput {
        precondition(table.integers.indices.contains(i), "step index \(i) out of range 0..<\(table.integers.count)")
        let t = table.integers[i]
        let alphaPrev = table.alphaProd(t - config.numTrainTimesteps / numInferenceSteps)
        let p = AlphaPrediction(alphaProd: table.alphaProd(t))
        let x0Raw = p.original(config.predictionType, modelOutput: modelOutput, sample: sample)
        let eps = p.epsilon(config.predictionType, modelOutput: modelOutput, sample: sample, original: x0Raw)
        let x0 = AlphaPrediction.clipped(x0Raw, config)
        // (1 - alpha_prod_t_prev - std_dev_t ** 2) ** 0.5 with std_dev_t = 0
        let direction = (1 - alphaPrev - 0).squareRoot()
        let a = alphaPrev.squareRoot()
        let prev = SchedulerElementwise.zip(x0, eps) { x, e in a * x + direction * e }
        return SchedulerStepOutput(prevSample: prev, predOriginalSample: x0)
    }
}
