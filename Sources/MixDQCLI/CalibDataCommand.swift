import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline

/// `mixdq calib-data`: the original gen_calib_data.py.
struct CalibDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calib-data",
        abstract: "Record calibration data (UNet inputs and FP outputs per step) into HDF5 at calib_data.path (gen_calib_data.py).")
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Also save the FP images of the calibration prompts here as <i>.png.") var saveImagePath: String?
    @Option(parsing: .unconditional, help: "Image i uses seed + i.") var seed: UInt64 = 42
    @Option(help: "Log file (default: next to the calibration file, <name>.log).") var log: String?

    func run() throws {
        let config = try modelOptions.loadConfig(basePath: nil)
        let output = config.calibData.url
        let runLog = try RunLog(log.map { URL(fileURLWithPath: $0) } ?? output.deletingPathExtension().appendingPathExtension("log"))
        try runLog.record("mixdq calib-data: config \(config.sourceURL?.path ?? "?") -> \(output.path)")
        let pipeline = try TextToImagePipeline(folder: try modelOptions.resolveModel(config, log: runLog),
                                               precision: modelOptions.precision)
        let captions = try config.captionsURL()
        let all = try PromptFile.load(captions)
        let n = config.calibData.nSamples
        // Image i uses seed + i: the last one must still be a valid torch seed (< 2^64).
        guard seed <= UInt64.max - UInt64(n - 1) else {
            throw CommandError("--seed \(seed) + calib_data.n_samples \(n) - 1 exceeds the largest seed, 2^64 - 1")
        }
        guard all.count >= n else { throw CommandError("\(captions.path): holds \(all.count) captions, calib_data.n_samples is \(n)") }
        let size = try pipeline.defaultSize
        if config.calibData.height == nil || config.calibData.width == nil, let p = GenerationLimits.imageSideProblem(size) {
            throw CommandError("the model's default image size (unet/config.json sample_size * 8) \(p); set calib_data.height and calib_data.width")
        }
        let generator = CalibrationDataGenerator(
            prompts: Array(all.prefix(n)), batchSize: config.calibData.batchSize, steps: config.calibData.nSteps,
            guidance: Float(config.calibData.scaleValue), height: config.calibData.height ?? size,
            width: config.calibData.width ?? size, seed: seed, output: output,
            imageFolder: saveImagePath.map { URL(fileURLWithPath: $0) })
        try generator.run(pipeline, log: runLog)
        try runLog.check()
    }
}
