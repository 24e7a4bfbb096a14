import ArgumentParser
import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// `--config`, `--model`, `--precision`: which model and MixDQ config a command uses.
struct ModelOptions: ParsableArguments {
    @Option(help: "MixDQ config YAML (configs/sdxl_turbo.yaml format). Default: <base-path>/config.yaml if present, else configs/sdxl_turbo.yaml.")
    var config: String?
    @Option(help: "A diffusers model folder; overrides the config's model. Default: the embedded tiny SDXL-architecture model.")
    var model: String?
    @Option(help: "fp32 or bf16 (the original's --fp16).") var precision: Precision = .fp32
    @Option(help: "A UNet folder used instead of the model's (e.g. a deployable quantized UNet from `mixdq quantize`).")
    var unet: String?
    @Option(help: "A LoRA (.safetensors file, or a folder holding pytorch_lora_weights.safetensors; diffusers/PEFT or kohya keys) fused into the UNet and text encoders at load.")
    var lora: String?
    @Option(parsing: .unconditional, help: "Scale of the fused LoRA (diffusers' fuse_lora lora_scale; the original fuses at 1.0).")
    var loraScale: Float = 1.0

    func validate() throws {
        guard loraScale.isFinite else { throw ValidationError("--lora-scale must be a finite number, found \(loraScale)") }
        if let note = try precision.checkSupported() { StandardError.write(note + "\n") }
    }

    /// The config: explicit, else `<base>/config.yaml`, else the repository's sdxl_turbo.yaml.
    func loadConfig(basePath: URL?) throws -> MixDQConfig {
        if let config { return try MixDQConfig.load(URL(fileURLWithPath: config)) }
        if let base = basePath?.appendingPathComponent("config.yaml"), FileManager.default.fileExists(atPath: base.path) {
            return try MixDQConfig.load(base)
        }
        let fallback = RepositoryPaths.file("configs/sdxl_turbo.yaml")
        guard let fallback else { throw CommandError("no --config given and configs/sdxl_turbo.yaml not found") }
        return try MixDQConfig.load(fallback)
    }

    /// `--model`, else the config's `model.path`, else the embedded default model (written on first use),
    /// checked against what the config asks for (`model_type`, `adapter_id`).
    func resolveModel(_ config: MixDQConfig?, log: RunLog?) throws -> ModelFolder {
        var folder = try resolveBaseModel(config, log: log)
        if let unet {
            folder.unetOverride = URL(fileURLWithPath: unet)
            log?.info("UNet: \(unet)")
        }
        if let config {
            do {
                try folder.check(against: config)
            } catch let error as ConfigError where error.key == "model.model_type" && isFallback(config) {
                // The user gave no config: say which one was taken and what to give instead.
                throw ConfigError(file: error.file, key: error.key, line: error.line, message: error.message
                    + " (no --config was given, so the SDXL-Turbo default was used: pass --config, e.g. a copy of "
                    + "configs/lcm_lora.yaml with model.path for an SD1.x model)")
            }
        }
        if let adapter = try config?.adapterURL() {
            // The original: fuse the adapter (at 1.0) and switch to LCMScheduler.
            if lora != nil {
                throw CommandError("\(config?.sourceURL?.path ?? "config"): 'model.adapter_id' and --lora both name a LoRA; give one")
            }
            folder.lora = try LoRAWeights.load(adapter, scale: loraScale)
            folder.schedulerOverride = .lcm
            log?.info("LoRA: adapter_id \(adapter.path) fused at scale \(loraScale); scheduler: LCMScheduler (as the original with an adapter)")
        }
        if let lora {
            folder.lora = try LoRAWeights.load(URL(fileURLWithPath: lora), scale: loraScale)
            log?.info("LoRA: \(lora) fused at scale \(loraScale)")
        }
        if folder.lora == nil, loraScale != 1.0 {
            throw CommandError("--lora-scale needs --lora (or a config with adapter_id)")
        }
        return folder
    }

    /// True when `config` is the repository's sdxl_turbo.yaml taken because no config was given.
    private func isFallback(_ config: MixDQConfig) -> Bool {
        guard self.config == nil, let source = config.sourceURL, let fallback = RepositoryPaths.file("configs/sdxl_turbo.yaml") else {
            return false
        }
        return source.standardizedFileURL.path == fallback.standardizedFileURL.path
    }

    private func resolveBaseModel(_ config: MixDQConfig?, log: RunLog?) throws -> ModelFolder {
        if let model { return ModelFolder(URL(fileURLWithPath: model)) }
        if let url = config?.model.url { return ModelFolder(url) }
        let folder = try DefaultModel.ensure(in: DefaultModel.defaultCache)
        log?.info("model: embedded default model \(folder.lastPathComponent) at \(folder.path) (pass --model or set model.path for a real one)")
        return ModelFolder(folder)
    }
}

/// The prompt, batching, seed and scale-out options shared by fp-infer and infer.
///
/// Numbers parse `.unconditional` so that "-1" is read as a value and rejected by `validate()`
/// with the bound, rather than taken for a flag ("Missing value").
struct GenerationOptions: ParsableArguments {
    @Option(help: "Prompt (repeated --num-imgs times). Without it, the first --num-imgs COCO captions.") var prompt: String?
    @Option(help: "Prompts: a COCO captions_val2014.json-format file, or a text file with one prompt per line. Default: calib_data.captions or the shipped captions.") var captions: String?
    @Option(parsing: .unconditional, help: "Number of images (1...\(GenerationLimits.maxImages)).") var numImgs = 32
    @Option(parsing: .unconditional, help: "Images per pipeline call (1...\(GenerationLimits.maxBatchSize)).") var batchSize = 4
    @Option(parsing: .unconditional, help: "Image i uses torch.Generator().manual_seed(seed + i).") var seed: UInt64 = 42
    @Option(parsing: .unconditional, help: "Guidance scale (default: calib_data.scale_value; > 1 enables CFG).") var cfg: Float?
    @Option(parsing: .unconditional, help: "Denoising steps, 1...\(GenerationLimits.maxSteps) (default: calib_data.n_steps).") var steps: Int?
    @Option(parsing: .unconditional, help: "Image height, a multiple of 8 up to \(GenerationLimits.maxImageSide) (default: the UNet's sample_size * 8).") var height: Int?
    @Option(parsing: .unconditional, help: "Image width, a multiple of 8 up to \(GenerationLimits.maxImageSide) (default: the UNet's sample_size * 8).") var width: Int?
    @Option(help: "Image folder (default: <base-path>/generated_images).") var imageFolder: String?
    @Option(help: "Run only shard I of N (indices i with i % N == I), e.g. 3/8; auto: from a Slurm job array (SLURM_ARRAY_TASK_ID/COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, MIXDQ_SHARD_COUNT).")
    var shard: String = "0/1"

    func validate() throws {
        do { _ = try Shard.resolve(shard) } catch { throw ValidationError(error.localizedDescription) }
        if let p = GenerationLimits.countProblem(numImgs, max: GenerationLimits.maxImages) { throw ValidationError("--num-imgs \(p)") }
        if let p = GenerationLimits.countProblem(batchSize, max: GenerationLimits.maxBatchSize) { throw ValidationError("--batch-size \(p)") }
        if let h = height, let p = GenerationLimits.imageSideProblem(h) { throw ValidationError("--height \(p)") }
        if let w = width, let p = GenerationLimits.imageSideProblem(w) { throw ValidationError("--width \(p)") }
        if let s = steps, let p = GenerationLimits.countProblem(s, max: GenerationLimits.maxSteps) { throw ValidationError("--steps \(p)") }
        if let cfg, !cfg.isFinite { throw ValidationError("--cfg must be a finite number, found \(cfg)") }
        // Image i uses seed + i: the last one must still be a valid torch seed (< 2^64).
        if seed > UInt64.max - UInt64(numImgs - 1) {
            throw ValidationError("--seed \(seed) + --num-imgs \(numImgs) - 1 exceeds the largest seed, 2^64 - 1")
        }
    }

    func prompts(_ config: MixDQConfig) throws -> [String] {
        if let prompt { return Array(repeating: prompt, count: numImgs) }
        let url = try captions.map { URL(fileURLWithPath: $0) } ?? config.captionsURL()
        let all = try PromptFile.load(url)
        guard all.count >= numImgs else {
            throw CommandError("\(url.path): holds \(all.count) captions, --num-imgs asks for \(numImgs)")
        }
        return Array(all.prefix(numImgs))
    }

    func job(_ config: MixDQConfig, pipeline: TextToImagePipeline, basePath: URL) throws -> ImageGenerationJob {
        let (height, width) = try imageSize(pipeline)
        let guidance = cfg ?? Float(config.calibData.scaleValue)
        guard guidance.isFinite else {
            throw CommandError("\(config.sourceURL?.path ?? "config"): 'calib_data.scale_value' \(config.calibData.scaleValue) does not fit a finite Float")
        }
        var job = ImageGenerationJob(prompts: try prompts(config), seed: seed, batchSize: batchSize,
                                     steps: steps ?? config.calibData.nSteps, guidance: guidance,
                                     height: height, width: width,
                                     folder: imageFolder.map { URL(fileURLWithPath: $0) } ?? basePath.appendingPathComponent("generated_images"),
                                     shard: try Shard.resolve(shard))
        job.releasesUNetBeforeLastDecode = true  // fp-infer and infer end with the job
        return job
    }
}

extension GenerationOptions {
    /// --height / --width, else the model's default (sample_size * 8), which is checked here too:
    /// it comes from the model's config.json.
    func imageSize(_ pipeline: TextToImagePipeline) throws -> (height: Int, width: Int) {
        if let height, let width { return (height, width) }
        let size = try pipeline.defaultSize
        if let p = GenerationLimits.imageSideProblem(size) {
            throw CommandError("the model's default image size (unet/config.json sample_size * 8) \(p); pass --height and --width")
        }
        return (height ?? size, width ?? size)
    }
}

/// Files of this repository (configs, assets) found from the executable's location or the
/// working directory, so commands work from a checkout without extra flags.
enum RepositoryPaths {
    static func file(_ relative: String) -> URL? {
        var candidates: [URL] = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 { candidates.append(dir); dir = dir.deletingLastPathComponent() }
        for c in candidates {
            let u = c.appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: u.path) { return u }
        }
        return nil
    }
}
