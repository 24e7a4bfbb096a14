import ArgumentParser
import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// `mixdq bench quant`: quality (UNet output SQNR vs FP) and cost (fake-quant vs FP time) of MixDQ
/// quantization, on a model folder with real calibration inputs or on a random-weight full-size UNet.
struct BenchQuant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quant",
        abstract: "SQNR of W8A8 / W4A8 / W8A16 with and without BOS-aware K/V, and fake-quant time vs FP.")
    @Option(help: "A diffusers pipeline folder (default: the embedded model); inputs come from its text encoders.") var model: String?
    @Flag(help: "Use a random-weight UNet built from --model-config with synthetic calibration inputs.") var randomWeights = false
    @Option(help: "A diffusers unet/config.json (with --random-weights).") var modelConfig: String?
    @Option var height: Int?
    @Option var width: Int?
    @Option(help: "Calibration batches.") var calibBatches = 4
    @Option(help: "Rows per calibration batch.") var batch = 2
    @Option(help: "Evaluation rows (distinct from calibration).") var evalSamples = 4
    @Option(help: "Synthetic inputs: token 0 of the context is scaled by this, mimicking CLIP's BOS outlier.") var bosScale: Float = 20
    @Option(help: "Timed runs for the fake-quant cost (0 to skip).") var timingRuns = 3

    func validate() throws {
        try BenchBounds.check(height: height, width: width, batch: batch, runs: max(timingRuns, 1), warmup: 0)
        for (name, v) in [("--calib-batches", calibBatches), ("--eval-samples", evalSamples)] where !(1...10_000).contains(v) {
            throw ValidationError("\(name) must be between 1 and 10000, found \(v)")
        }
        if timingRuns < 0 { throw ValidationError("--timing-runs must be >= 0, found \(timingRuns)") }
        if !bosScale.isFinite { throw ValidationError("--bos-scale must be a finite number, found \(bosScale)") }
    }

    func run() throws {
        let log: (String) -> Void = { StandardError.write("\($0)\n") }
        var built: UNet2DConditionModel?
        var buildForQuantization: () throws -> UNet2DConditionModel
        var buildPacked: () throws -> UNet2DConditionModel
        var calibration: [UNetInputs] = [], evaluation: [UNetInputs] = []
        var source = ""
        if randomWeights {
            guard let modelConfig else { throw CommandError("--random-weights needs --model-config") }
            let config = try UNetConfig.load(URL(fileURLWithPath: modelConfig))
            buildForQuantization = { try UNet2DConditionModel(config: config, weights: RandomWeightSource(seed: 0)) }
            buildPacked = { try UNet2DConditionModel(config: config, weights: RandomWeightSource(seed: 0), packForInference: true) }
            let size = (config.sampleSize ?? 64) * 8
            var g = SplitMix64(seed: 7)
            func inputs(_ b: Int) -> UNetInputs {
                var x = BenchInputs.unet(config, height: height ?? size, width: width ?? size, seed: g.next())
                // The latent is noise at sigma_max scaled by 1/sqrt(sigma^2 + 1): unit variance.
                if b > 1 {
                    let many = (0..<b).map { _ in BenchInputs.unet(config, height: height ?? size, width: width ?? size, seed: g.next()) }
                    x = UNetInputs(sample: stack(many.map(\.sample)), timesteps: [999], encoderHiddenStates: stack(many.map(\.encoderHiddenStates)),
                                   textEmbeds: many[0].textEmbeds.map { _ in stack(many.map { $0.textEmbeds! }) },
                                   timeIds: many[0].timeIds.map { _ in stack(many.map { $0.timeIds! }) },
                                   timestepCond: many[0].timestepCond.map { _ in stack(many.map { $0.timestepCond! }) })
                }
                let ctx = x.encoderHiddenStates
                let (n, c) = (ctx.shape[1], ctx.shape[2])
                for i in 0..<ctx.shape[0] { for j in 0..<c { ctx.data[i * n * c + j] *= bosScale } }
                return x
            }
            calibration = (0..<calibBatches).map { _ in inputs(batch) }
            evaluation = (0..<evalSamples).map { _ in inputs(1) }
            source = "random-weight UNet \(modelConfig), synthetic inputs (token 0 x\(bosScale))"
        } else {
            let folder = try model.map { ModelFolder(URL(fileURLWithPath: $0)) }
                ?? ModelFolder(try DefaultModel.ensure(in: DefaultModel.defaultCache))
            let pipeline = try TextToImagePipeline(folder: folder)
            pipeline.configureUNet = { _ in }   // keep FP weights: the simulator needs them
            buildPacked = { try folder.loadUNet(packForInference: true) }
            let captions = try COCOCaptions.load(try MixDQConfig.defaultCaptionsURL(near: nil)
                                                 ?? { throw CommandError("default captions not found") }())
            let size = try pipeline.defaultSize
            let (h, w) = (height ?? size, width ?? size)
            func rows(_ prompts: [String], first: Int) throws -> UNetInputs {
                let emb = try pipeline.encode(prompts)
                var noise = BatchNoise(seeds: (0..<prompts.count).map { UInt64(first + $0) })
                var captured: UNetInputs?
                _ = try pipeline.denoise(emb, noise: &noise, steps: 1, guidance: 0, height: h, width: w) { r in
                    captured = UNetInputs(sample: r.sample, timesteps: [r.timestep], encoderHiddenStates: r.context,
                                          textEmbeds: r.textEmbeds, timeIds: r.timeIds, timestepCond: r.timestepCond)
                }
                return captured!
            }
            let needed = calibBatches * batch + evalSamples
            guard captions.count >= needed else { throw CommandError("need \(needed) captions, have \(captions.count)") }
            calibration = try (0..<calibBatches).map { try rows(Array(captions[($0 * batch)..<(($0 + 1) * batch)]), first: $0 * batch) }
            evaluation = try (0..<evalSamples).map { try rows([captions[calibBatches * batch + $0]], first: calibBatches * batch + $0) }
            pipeline.releaseTextEncoders()
            built = try pipeline.unet
            buildForQuantization = { built! }
            source = "\(folder.root.lastPathComponent) with calibration inputs from its pipeline (COCO-style captions)"
        }
        let report = QuantizationReport(calibration: calibration, evaluation: evaluation)
        var fpTime: Double?
        if timingRuns > 0 {
            // FP reference time: the inference-packed model fp-infer runs (built and freed first, for memory).
            let packed = try buildPacked()
            fpTime = try QuantizationReport.medianTime(runs: timingRuns) { _ = try packed(evaluation[0]) }
        }
        let unet = try buildForQuantization()
        // Full-size models: no cached fp32 copy of quantized weights during the sweep.
        let rows = try report.measure(unet, cacheWeights: !randomWeights, log: log)
        print("mixdq bench quant: \(source); \(calibBatches)x\(batch) calibration rows, \(evalSamples) evaluation rows")
        print("| setting | BOS-aware | SQNR (dB) |")
        print("|---|---|---|")
        for r in rows { print(String(format: "| %@ | %@ | %.2f |", r.setting as NSString, r.bosAware ? "yes" : "no", r.sqnrDB)) }
        if let fp = fpTime {
            let q = try report.timeFrozenW8A8(unet, runs: timingRuns)
            print(String(format: "fake-quant W8A8 forward %.3f s vs FP %.3f s: %.2fx (median of %d after a warm-up, batch 1)", q, fp, q / fp, timingRuns))
        }
    }
}

private func stack(_ ts: [Tensor]) -> Tensor {
    let per = ts[0].count
    let out = Tensor(uninitializedShape: [ts.count * ts[0].shape[0]] + ts[0].shape.dropFirst())
    for (i, t) in ts.enumerated() { (out.data + i * per).update(from: t.data, count: per) }
    return out
}
