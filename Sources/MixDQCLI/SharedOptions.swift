import ArgumentParser
import Foundation
import MixDQCompute
import MixDQIO
import MixDQPipeline

/// `--config`, `--model`, `--precision`: which model and MixDQ config a command uses.
struct ModelOptions: ParsableArguments {
    @Option(help: "MixDQ config YAML (configs/sdxl_turbo.yaml format). Default: <base-path>/config.yaml if present, else configs/sdxl_turbo.yaml.")
    var config: String?
    @Option(help: "A diffusers model folder; overrides the config's model. Default: the embedded tiny SDXL-architecture model.")
    var model: String?
    @Option(help: "fp32 or bf16 (the original's --fp16).") var precision: Precision = .fp32

    func validate() throws {
        if let note = try precision.checkSupported() { FileHandle.standardError.write(Data((note + "\n").utf8)) }
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

    /// `--model`, else the config's `model.path`, else the embedded default model (written on first use).
    func resolveModel(_ config: MixDQConfig?, log: RunLog?) throws -> ModelFolder {
        if let model { return ModelFolder(URL(fileURLWithPath: model)) }
        if let url = config?.model.url { return ModelFolder(url) }
        let folder = try DefaultModel.ensure(in: DefaultModel.defaultCache)
        log?.info("model: embedded default model \(DefaultModel.version) at \(folder.path) (pass --model or set model.path for a real one)")
        return ModelFolder(folder)
    }
}

/// The prompt, batching, seed and scale-out options shared by fp-infer and infer.
struct GenerationOptions: ParsableArguments {
    @Option(help: "Prompt (repeated --num-imgs times). Without it, the first --num-imgs COCO captions.") var prompt: String?
    @Option(help: "COCO captions_val2014.json-format file. Default: calib_data.captions or the shipped captions.") var captions: String?
    @Option(help: "Number of images.") var numImgs = 32
    @Option(help: "Images per pipeline call.") var batchSize = 4
    @Option(help: "Image i uses torch.Generator().manual_seed(seed + i).") var seed: UInt64 = 42
    @Option(help: "Guidance scale (default: calib_data.scale_value; > 1 enables CFG).") var cfg: Float?
    @Option(help: "Denoising steps (default: calib_data.n_steps).") var steps: Int?
    @Option(help: "Image height (default: the UNet's sample_size * 8).") var height: Int?
    @Option(help: "Image width (default: the UNet's sample_size * 8).") var width: Int?
    @Option(help: "Image folder (default: <base-path>/generated_images).") var imageFolder: String?
    @Option(help: "Run only shard I of N (indices i with i % N == I), e.g. 3/8.") var shard: String = "0/1"

    func validate() throws {
        guard ImageGenerationJob.Shard(shard) != nil else { throw ValidationError("--shard must be I/N with 0 <= I < N, got '\(shard)'") }
        if numImgs < 1 || batchSize < 1 { throw ValidationError("--num-imgs and --batch-size must be positive") }
        if let h = height, h % 8 != 0 || h <= 0 { throw ValidationError("--height must be a positive multiple of 8") }
        if let w = width, w % 8 != 0 || w <= 0 { throw ValidationError("--width must be a positive multiple of 8") }
        if let s = steps, s < 1 { throw ValidationError("--steps must be at least 1") }
    }

    func prompts(_ config: MixDQConfig) throws -> [String] {
        if let prompt { return Array(repeating: prompt, count: numImgs) }
        let url = try captions.map { URL(fileURLWithPath: $0) } ?? config.captionsURL()
        let all = try COCOCaptions.load(url)
        guard all.count >= numImgs else {
            throw CommandError("\(url.path): holds \(all.count) captions, --num-imgs asks for \(numImgs)")
        }
        return Array(all.prefix(numImgs))
    }

    func job(_ config: MixDQConfig, pipeline: TextToImagePipeline, basePath: URL) throws -> ImageGenerationJob {
        let size = try pipeline.defaultSize
        return ImageGenerationJob(prompts: try prompts(config), seed: seed, batchSize: batchSize,
                                  steps: steps ?? config.calibData.nSteps, guidance: cfg ?? Float(config.calibData.scaleValue),
                                  height: height ?? size, width: width ?? size,
                                  folder: imageFolder.map { URL(fileURLWithPath: $0) } ?? basePath.appendingPathComponent("generated_images"),
                                  shard: ImageGenerationJob.Shard(shard)!)
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
