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
    @Option(help: "Image i uses seed + i.") var seed: UInt64 = 42
    @Option(help: "Log file (default: next to the calibration file, <name>.log).") var log: String?

    func run() throws {
        let config = try modelOptions.loadConfig(basePath: nil)
        let output = config.calibData.url
        let runLog = try RunLog(log.map { URL(fileURLWithPath: $0) } ?? output.deletingPathExtension().appendingPathExtension("log"))
        runLog.info("mixdq calib-data: config \(config.sourceURL?.path ?? "?") -> \(output.path)")
        let pipeline = try TextToImagePipeline(folder: try modelOptions.resolveModel(config, log: runLog),
                                               precision: modelOptions.precision)
        let captions = try config.captionsURL()
        let all = try COCOCaptions.load(captions)
        let n = config.calibData.nSamples
        guard all.count >= n else { throw CommandError("\(captions.path): holds \(all.count) captions, calib_data.n_samples is \(n)") }
        let size = try pipeline.defaultSize
        let generator = CalibrationDataGenerator(
            prompts: Array(all.prefix(n)), batchSize: config.calibData.batchSize, steps: config.calibData.nSteps,
            guidance: Float(config.calibData.scaleValue), height: config.calibData.height ?? size,
            width: config.calibData.width ?? size, seed: seed, output: output,
            imageFolder: saveImagePath.map { URL(fileURLWithPath: $0) })
        try generator.run(pipeline, log: runLog)
    }
}
