/// The training-time noise schedule of the discrete Euler schedulers, in the dtypes diffusers
/// uses, so that every table value is the same float32 torch computes:
/// * betas: `torch.linspace(..., dtype=float32)` (squared for "scaled_linear") or `trained_betas`;
/// * alphas_cumprod: `torch.cumprod(1 - betas)`, which on CPU accumulates in double and rounds
///   each prefix product to float32;
/// * sigma table: `((1 - ac) / ac) ** 0.5` as float32 tensor ops.
/// One known deviation: torch's x86 wheels compute float32 sqrt through MKL, which is 1 ulp off
/// the correctly rounded `squareRoot()` for about 19% of inputs (190 of these 1000 entries). The
/// entries SDXL-Turbo's trailing schedules use (t = 999, 874, 749, ...) are all exact.
public struct NoiseSchedule: Sendable {
    public let betas: [Float]
    public let alphasCumprod: [Float]
    /// σ(t) for t = 0 ..< num_train_timesteps, increasing.
    public let sigmaTable: [Float]

    public init(config: SchedulerConfig) {
        let n = config.numTrainTimesteps
        var betas: [Float]
        if let trained = config.trainedBetas {
            betas = trained.map { Float($0) }
        } else {
            switch config.betaSchedule {
            case .linear:
                betas = Self.torchLinspace(Float(config.betaStart), Float(config.betaEnd), n)
            case .scaledLinear:
                betas = Self.torchLinspace(Float(config.betaStart.squareRoot()), Float(config.betaEnd.squareRoot()), n)
                    .map { $0 * $0 }
            }
        }
        self.betas = betas
        var acc = 1.0
        var cumprod = [Float](repeating: 0, count: n)
        for i in 0..<n {
            acc *= Double(1 - betas[i])
            cumprod[i] = Float(acc)
        }
        alphasCumprod = cumprod
        sigmaTable = cumprod.map { ((1 - $0) / $0).squareRoot() }
    }

    /// `torch.linspace(start, end, steps, dtype=float32)` on CPU: the first half counts up from
    /// `start`, the second half down from `end`, with a float32 step. The kernel is built with
    /// FMA and GCC fuses `start + step * idx`, hence `addingProduct`.
    static func torchLinspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        guard steps > 1 else { return steps == 1 ? [start] : [] }
        let step = (end - start) / Float(steps - 1)
        let halfway = steps / 2
        return (0..<steps).map { idx in
            idx < halfway ? start.addingProduct(step, Float(idx))
                          : end.addingProduct(-step, Float(steps - idx - 1))
        }
    }

    /// `np.interp(t, arange(len(table)), table)` in double precision (numpy's formula), as
    /// diffusers maps (possibly fractional) timesteps to sigmas.
    func interpolatedSigma(at t: Double) -> Double {
        let table = sigmaTable
        let last = table.count - 1
        if t.isNaN { return t }
        if t < 0 { return Double(table[0]) }
        if t >= Double(last) { return Double(table[last]) }
        let j = Int(t.rounded(.down))
        let lo = Double(table[j])
        if Double(j) == t { return lo }
        let hi = Double(table[j + 1])
        let slope = (hi - lo) / 1.0  // xp[j+1] - xp[j] == 1
        return slope * (t - Double(j)) + lo
    }
}
