import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline

/// `mixdq fp-infer`: the original scripts/txt2img.py.
struct FPInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fp-infer", abstract: "Generate images with the full-precision pipeline (txt2img.py).")
    @Option(help: "Output root: images in <base-path>/generated_images/<i>.png, log in <base-path>/run.log.") var basePath: String
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var generation: GenerationOptions

    func run() throws {
        let base = URL(fileURLWithPath: basePath)
        let log = try RunLog(base.appendingPathComponent("run.log"))
        let config = try modelOptions.loadConfig(basePath: base)
        try log.record("mixdq fp-infer: config \(config.sourceURL?.path ?? "?"), precision \(modelOptions.precision.rawValue)")
        let pipeline = try TextToImagePipeline(folder: try modelOptions.resolveModel(config, log: log),
                                               precision: modelOptions.precision)
        let job = try generation.job(config, pipeline: pipeline, basePath: base)
        try job.run(pipeline, log: log)
        log.info("done")
        try log.check()
    }
}
