import ArgumentParser
import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline
import MixDQQuant

/// `mixdq search sensitivity`: the original's single-layer perturbation sensitivity
/// (mixdq-method.md §6.2-6.3): content layers by SSIM of final images against FP images, quality
/// layers by SQNR of the UNet output against the calibration file's stored outputs. Resumable
/// (journal) and shardable (`--shard I/N|auto`, joined by `search merge`).
struct SearchSensitivityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensitivity",
        abstract: "Per-layer sensitivity: only one layer quantized (weight-only or act-only) at each bit width; SSIM (content) or SQNR (quality).")
    @Option(help: "The ptq output folder (its ckpt.safetensors and config.yaml), or a checkpoint file.") var ckpt: String
    @Option(help: "weight (weight-only perturbation) or act (activation-only).") var type: String
    @Option(help: "content (path contains attn2 or ff; SSIM), quality (the rest; SQNR) or all (each by its group's metric).") var group = "all"
    @Option(help: "Bit widths, ascending: the score columns (each needs parameters in the checkpoint).") var bits = "2,4,8"
    @Option(help: "Only layers whose path (with or without 'model.') matches this regular expression.") var layers: String?
    @Option(help: "Score every layer with this metric instead of its group's: ssim or sqnr.") var metric: String?
    @Option(help: "Measure only shard I of N of the run's layers (positions p with p % N == I), or auto (Slurm array / Kubernetes Indexed Job; see README).")
    var shard = "0/1"
    @Option(help: "Output YAML 'model.<layer>: [s@b, ...]'; <out>.journal and <out>.work/ hold the resume state until it is complete.")
    var out: String
    @Option(help: "Calibration HDF5 for SQNR (default: calib_data.path of the config).") var calib: String?
    @Option(parsing: .unconditional, help: "Memory for the FP activations cached at stage boundaries (MiB); beyond it every layer runs the full forward.")
    var cacheMib = 4096
    @Option(parsing: .unconditional, help: "SSIM: the first N COCO captions (calib_data.captions).") var prompts = 32
    @Option(help: "SSIM: COCO captions json (default: calib_data.captions of the config).") var captions: String?
    @Option(parsing: .unconditional, help: "SSIM window: 511 (the original, near-global on 512² images) or 7 (the standard window); odd, at most the image side.")
    var ssimWindow = 511
    @Option(parsing: .unconditional, help: "SSIM: image i uses seed + i (the original re-applies seed 42).") var seed: UInt64 = 42
    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        guard SensitivityType(rawValue: type) != nil else { throw ValidationError("--type \(type): expected weight or act") }
        _ = try SearchInputs.group(group)
        _ = try SearchInputs.bits(bits, flag: "--bits")
        if let metric, SensitivityMetric(rawValue: metric) == nil { throw ValidationError("--metric \(metric): expected ssim or sqnr") }
        do { _ = try Shard.resolve(shard) } catch { throw ValidationError(error.localizedDescription) }
        if let p = GenerationLimits.countProblem(prompts, max: GenerationLimits.maxImages) { throw ValidationError("--prompts \(p)") }
        guard ssimWindow >= 3, ssimWindow % 2 == 1 else { throw ValidationError("--ssim-window \(ssimWindow): must be odd and at least 3") }
        guard cacheMib >= 0, cacheMib <= 1 << 30 else { throw ValidationError("--cache-mib \(cacheMib): must be between 0 and 2^30") }
        guard seed <= UInt64.max - UInt64(prompts - 1) else {
            throw ValidationError("--seed \(seed) + --prompts \(prompts) - 1 exceeds the largest seed, 2^64 - 1")
        }
        guard modelOptions.precision == .fp32 else { throw ValidationError("sensitivity simulates quantization in fp32; drop --precision") }
    }

    func run() throws {
        let output = URL(fileURLWithPath: out)
        let ckptURL = CheckpointArgument.file(ckpt)
        let log = try RunLog(output.deletingPathExtension().appendingPathExtension("log"))
        let config = try modelOptions.loadConfig(basePath: ckptURL.deletingLastPathComponent())
        let settings = try QuantSettings(config)
        try log.record("mixdq search sensitivity: --type \(type) --group \(group) --bits \(bits) --layers \(layers ?? "(all)") --shard \(shard) -> \(out)")
        let folder = try modelOptions.resolveModel(config, log: log)
        if try folder.quantizedUNetHeader() != nil {
            throw CommandError("the UNet at \(try folder.component("unet").path) is a deployable quantized UNet; sensitivity perturbs one layer of the fp32 UNet: give the fp32 model")
        }
        let pipeline = try TextToImagePipeline(folder: folder, precision: .fp32)
        var simulator: QuantSimulator?
        pipeline.configureUNet = { unet in
            let sim = try QuantSimulator(registry: unet.registry, settings: settings)
            try QuantCheckpoint.load(ckptURL, into: sim)
            sim.setQuantState(weight: false, activation: false)
            // Each (layer, bits) runs once: no fake-quantized copies kept (they would add up over layers).
            sim.setCachesQuantizedWeights(false)
            simulator = sim
        }
        let unet = try pipeline.unet
        guard let sim = simulator else { throw CommandError("internal: the quantization simulator was not installed") }

        guard let perturbed = SensitivityType(rawValue: type) else { throw CommandError("--type \(type): expected weight or act") }
        let plan = try SensitivityPlan(type: perturbed, group: try SearchInputs.group(group),
                                       bits: try SearchInputs.bits(bits, flag: "--bits"), layersPattern: layers,
                                       metric: metric.flatMap(SensitivityMetric.init(rawValue:)), shard: try Shard.resolve(shard),
                                       modelLayers: sim.paths, availableBits: settings.bitWidths)
        let calibURL = calib.map { URL(fileURLWithPath: $0) } ?? config.calibData.url
        let content = plan.runUses(.ssim) ? try contentInputs(config, pipeline: pipeline) : nil
        let identity = try SensitivityRunIdentity.make(
            plan: plan, checkpoint: ckptURL, settings: settings, quality: plan.runUses(.sqnr) ? .init(calibration: calibURL) : nil, content: content)
        log.info("run: \(plan.layers.count) layer(s) of the \(group) group, bits \(bits); shard \(plan.shard): \(plan.shardLayers.count) layer(s)")
        let run = SensitivityRun(plan: plan, identity: identity, output: output)
        let similarity = plan.shardUses(.ssim) ? Self.ssim(window: ssimWindow) : nil
        let outcome = try run.run(prepare: {
            var quality: QualitySensitivity?
            var contentMeasure: ContentSensitivity?
            if plan.shardUses(.sqnr) {
                let q = try QualitySensitivity(unet: unet, sim: sim, calibration: calibURL, cacheBudgetBytes: cacheMib << 20)
                let sanity = q.fpSQNR.isFinite ? String(format: "%.4f dB", q.fpSQNR) : "inf dB (bit-identical)"
                print("FP sanity SQNR (FP UNet vs the stored outputs of \(calibURL.path)): \(sanity)")
                log.info("FP sanity SQNR: \(sanity)")
                log.info(q.cache.note)
                quality = q
            }
            if plan.shardUses(.ssim), let content, let similarity {
                contentMeasure = try ContentSensitivity(pipeline: pipeline, sim: sim, settings: content.settings,
                                                        workFolder: run.workFolder, log: log,
                                                        similarity: similarity)
            }
            return { layer in
                switch plan.metric(of: layer) {
                case .sqnr: return try quality.orFail("SQNR inputs").measure(layer, type: plan.type, bits: plan.bits)
                case .ssim: return try contentMeasure.orFail("SSIM inputs").measure(layer, type: plan.type, bits: plan.bits)
                }
            }
        }, report: { log.info($0) })
        switch outcome {
        case .alreadyComplete: print("\(out) is already complete for this run")
        case let .complete(measured): print("wrote \(out) (\(plan.shardLayers.count) layer(s), \(measured) measured now)")
        case let .stopped(journaled): print("stopped with \(journaled) layer(s) journaled")
        }
        try log.check()
    }


    /// Prompts, seed, steps, guidance and size of the SSIM images (the config's, like the original).
    func contentInputs(_ config: MixDQConfig, pipeline: TextToImagePipeline) throws -> SensitivityRunIdentity.ContentInputs {
        let url = try captions.map { URL(fileURLWithPath: $0) } ?? config.captionsURL()
        let all = try PromptFile.load(url)
        guard all.count >= prompts else { throw CommandError("\(url.path): holds \(all.count) captions, --prompts asks for \(prompts)") }
        let size = try pipeline.defaultSize
        let (h, w) = (config.calibData.height ?? size, config.calibData.width ?? size)
        for (name, v) in [("height", h), ("width", w)] {
            if let p = GenerationLimits.imageSideProblem(v) { throw CommandError("image \(name) (calib_data.\(name) or the UNet's sample_size * 8) \(p)") }
        }
        guard ssimWindow <= min(h, w) else {
            throw CommandError("--ssim-window \(ssimWindow) is larger than the \(w)x\(h) images; use --ssim-window 7 or an odd window up to \(min(h, w))")
        }
        let guidance = Float(config.calibData.scaleValue)
        guard guidance.isFinite else { throw CommandError("calib_data.scale_value \(config.calibData.scaleValue) does not fit a finite Float") }
        return .init(settings: .init(prompts: Array(all.prefix(prompts)), seed: seed, steps: config.calibData.nSteps,
                                     guidance: guidance, height: h, width: w),
                     ssimWindow: ssimWindow)
    }

    /// SSIM as skimage's structural_similarity(channel_axis=2, win_size=window, data_range=255).
    static func ssim(window: Int) -> (RGBImage, RGBImage) throws -> Double {
        { try ImageMetrics.ssim($0, $1, windowSize: window) }
    }
}

extension Optional {
    func orFail(_ what: String) throws -> Wrapped {
        guard let self else { throw CommandError("internal: \(what) were not prepared") }
        return self
    }
}
