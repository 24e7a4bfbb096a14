/// Inference timesteps for `set_timesteps(N)`, reproducing diffusers' numpy arithmetic
/// (float64 then float32) for each `timestep_spacing`.
extension SchedulerConfig.TimestepSpacing {
    public func timesteps(numInferenceSteps n: Int, numTrainTimesteps t: Int, stepsOffset: Int) -> [Float] {
        switch self {
        case .linspace:
            // np.linspace(0, T-1, N, dtype=float32)[::-1]: computed in float64, last value pinned.
            let stop = Double(t - 1)
            var values: [Double]
            if n > 1 {
                let step = stop / Double(n - 1)
                values = (0..<n).map { Double($0) * step + 0 }
                values[n - 1] = stop
            } else {
                values = [0]
            }
            return values.reversed().map { Float($0) }
        case .leading:
            // (arange(N) * (T // N)).round()[::-1].astype(float32) + steps_offset
            let ratio = t / n
            return (0..<n).reversed().map { Float($0 * ratio) + Float(stepsOffset) }
        case .trailing:
            // np.arange(T, 0, -T/N).round().astype(float32) - 1, with numpy's arange length and fill
            let ratio = Double(t) / Double(n)
            let start = Double(t)
            let length = Int((-start / -ratio).rounded(.up))
            guard length > 0 else { return [] }
            var values = [start]
            if length > 1 {
                let second = start + -ratio
                values.append(second)
                let delta = second - start
                for i in 2..<length { values.append(start + Double(i) * delta) }
            }
            return values.map { Float($0.rounded(.toNearestOrEven)) - 1 }
        }
    }
}
