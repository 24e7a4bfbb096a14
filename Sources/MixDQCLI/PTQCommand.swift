import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline
import MixDQQuant

/// `mixdq ptq`: the original ptq.py.
struct PTQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ptq",
        abstract: "Calibrate MixDQ quantization parameters for all bit widths into <outdir>/ckpt.safetensors (ptq.py).")
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Output folder: ckpt.safetensors, config.yaml, run.log.") var outdir: String
    @Option(help: "Seed of the calibration order.") var seed: UInt64 = 42

    func validate() throws {
        guard modelOptions.precision == .fp32 else { throw ValidationError("ptq calibrates in fp32 (as the original); drop --precision") }
    }

    func run() throws {
        let out = URL(fileURLWithPath: outdir)
        let log = try RunLog(out.appendingPathComponent("run.log"))
        let config = try modelOptions.loadConfig(basePath: nil)
        let settings = try QuantSettings(config)
        try log.record("mixdq ptq: config \(config.sourceURL?.path ?? "?"), calibration data \(config.calibData.path)")
        let folder = try modelOptions.resolveModel(config, log: log)
        // A copy of the config beside the checkpoint, so infer finds both.
        try AtomicFile.write(Data(try config.yamlString().utf8), to: out.appendingPathComponent("config.yaml"))
        let unet = try folder.loadUNet()
        let data = try CalibrationData.load(config.calibData.url, nSamples: nil)
        log.info("calibration set: \(data.count) row(s)")
        try PostTrainingQuantization(settings: settings, batchSize: config.calibData.batchSize, nSamples: nil, seed: seed)
            .run(unet: unet, data: data, checkpoint: out.appendingPathComponent("ckpt.safetensors"), log: log,
                 metadata: ["model": folder.root.path, "config": config.sourceURL?.path ?? ""])
        log.info("done")
        try log.check()
    }
}
