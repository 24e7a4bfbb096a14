import ArgumentParser
import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline
import MixDQQuant

/// `mixdq quantize`: a deployable quantized UNet from a ptq checkpoint (and mixed-precision files):
/// packed integer weight codes and quantization parameters in a diffusers-style unet/ folder that
/// `infer` / `fp-infer --unet DIR` run on oneDNN INT8 without any fp32 weight of a quantized layer.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Write a deployable quantized UNet (packed weight codes + quant params, safetensors) from a ptq checkpoint.")
    @Option(help: "The ptq output folder (ckpt.safetensors and config.yaml), or the checkpoint file itself.") var ckpt: String
    @Option(help: "Per-layer weight bits, YAML 'model.<layer>: bits' (original format).") var configWeightMp: String?
    @Option(help: "Per-layer activation bits (needs --config-weight-mp); only 8-bit activations have an integer path.") var configActMp: String?
    @Option(help: "Layers kept fully FP when --config-act-mp is used: a YAML list, or the original's torch.save'd list (act_sensitivie_a8_1%.pt).") var actProtect: String?
    @Flag(help: "Weight-only quantization (A16: weights stored packed, run dequantized in fp32).") var skipQuantAct = false
    @Option(help: "Output folder for the quantized UNet (must not exist yet).") var out: String
    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        if configActMp != nil && configWeightMp == nil { throw ValidationError("--config-act-mp needs --config-weight-mp") }
        if actProtect != nil && configActMp == nil { throw ValidationError("--act-protect applies only with --config-act-mp") }
        if modelOptions.precision != .fp32 { throw ValidationError("quantize reads the fp32 UNet; drop --precision") }
        if modelOptions.unet != nil { throw ValidationError("quantize reads the model's fp32 UNet; drop --unet") }
    }

    func run() throws {
        let outURL = URL(fileURLWithPath: out)
        guard !FileManager.default.fileExists(atPath: outURL.path) else {
            throw CommandError("\(outURL.path) already exists; remove it or choose another --out")
        }
        let checkpoint = CheckpointArgument.file(ckpt)
        let base = checkpoint.deletingLastPathComponent()   // the ptq folder: its config.yaml
        let staging = outURL.deletingLastPathComponent().appendingPathComponent(".\(outURL.lastPathComponent).partial-\(getpid())")
        try? FileManager.default.removeItem(at: staging)
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        let log = try RunLog(staging.appendingPathComponent("run.log"))   // moves with the result
        let config = try modelOptions.loadConfig(basePath: base)
        var setup = QuantizedInferenceSetup(
            checkpoint: checkpoint, settings: try QuantSettings(config),
            weightBits: try configWeightMp.map { try BitConfig.load(URL(fileURLWithPath: $0)) },
            activationBits: try configActMp.map { try BitConfig.load(URL(fileURLWithPath: $0)) },
            actProtect: try actProtect.map { try BitConfig.loadLayerList(URL(fileURLWithPath: $0)) } ?? [],
            quantizeWeights: true, quantizeActivations: !skipQuantAct)
        if let actProtect { setup.actProtectSource = actProtect }
        let folder = try modelOptions.resolveModel(config, log: log)
        let unetDir = try folder.component("unet")
        let unet = try folder.loadUNet()
        let sim = try setup.apply(to: unet, log: log)
        try setup.weightBits?.checkCovers(sim.paths)
        try setup.activationBits?.checkCovers(sim.paths, except: Set(setup.actProtect))
        // BOS-aware K/V keep token 0 in FP: the table holds the FP outputs for this model's BOS row.
        var token0Rows: [[Float]] = []
        if sim.layers.contains(where: \.bosAware) {
            let pipeline = try TextToImagePipeline(folder: folder)
            let context = try pipeline.encode([""]).context
            token0Rows.append(Array(UnsafeBufferPointer(start: context.data, count: context.shape[2])))
            pipeline.releaseTextEncoders()
        }
        // FP layers and other tensors are copied with the LoRA fused, as the quantized layers were
        // quantized from fused weights; the UNet records the LoRA, which loading it then requires.
        let source = try SafetensorsWeightSource.open(folder: unetDir)
        var metadata = ["checkpoint": checkpoint.path, "model": folder.root.path]
        var tensors: WeightSource = source
        if let lora = folder.lora {
            let config = try UNetConfig.load(unetDir.appendingPathComponent("config.json"))
            tensors = lora.fused(.unet, into: source, modelName: unetDir.path, sgmNames: SGMModuleNames(config: config))
            metadata[QuantizedUNetFormat.loraKey] = lora.identity
            log.info("LoRA fused into the quantized UNet: \(lora.identity)")
        }
        let codeBytes = try QuantizedUNetWriter.write(
            sim, source: source, tensors: tensors, config: unetDir.appendingPathComponent("config.json"),
            token0Rows: token0Rows, metadata: metadata, to: staging)
        try FileManager.default.moveItem(at: staging, to: outURL)
        let fpBytes = sim.layers.filter(\.weightEnabled).reduce(0) { $0 + 4 * $1.site.outChannels * $1.site.rowLength }
        log.info(String(format: "quantized UNet: %@ (%d of %d layers quantized; weight codes %.1f MB packed vs %.1f MB fp32 = %.3fx)",
                        outURL.path, sim.layers.filter(\.weightEnabled).count, sim.layers.count,
                        Double(codeBytes) / 1e6, Double(fpBytes) / 1e6, Double(codeBytes) / Double(max(fpBytes, 1))))
        try log.check()
    }
}
