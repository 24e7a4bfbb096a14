import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline
import MixDQQuant

extension BackendChoice: ExpressibleByArgument {}

/// `mixdq infer`: the original quant_txt2img.py (fake-quantized UNet, uniform or mixed precision).
struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer", abstract: "Generate images with the quantized UNet (quant_txt2img.py), on oneDNN INT8 or fake quant.")
    @Option(help: "The ptq output folder: ckpt.safetensors and config.yaml are taken from here; images go to <base-path>/generated_images.")
    var basePath: String
    @Option(help: "Quant checkpoint (default: <base-path>/ckpt.safetensors).") var ckpt: String?
    @Option(help: "Per-layer weight bits, YAML 'model.<layer>: bits' (original format).") var configWeightMp: String?
    @Option(help: "Per-layer activation bits (needs --config-weight-mp).") var configActMp: String?
    @Option(help: "Layers kept fully FP when --config-act-mp is used: a YAML list, or the original's torch.save'd list (act_sensitivie_a8_1%.pt).") var actProtect: String?
    @Flag(help: "Disable activation fake quantization.") var skipQuantAct = false
    @Flag(help: "Disable weight fake quantization.") var skipQuantWeight = false
    @Option(help: "Quantized execution: int8 (oneDNN integer kernels), fake (fp32 simulation, the original's), auto (int8 where every layer has an integer path, else fake), cuda (W·A layers on an NVIDIA GPU via kernels/libmixdq_cuda.so, found at $MIXDQ_CUDA_LIB, next to mixdq or in kernels/build/).")
    var backend: BackendChoice = .automatic
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var generation: GenerationOptions

    func validate() throws {
        if configActMp != nil && configWeightMp == nil { throw ValidationError("--config-act-mp needs --config-weight-mp") }
        if actProtect != nil && configActMp == nil { throw ValidationError("--act-protect applies only with --config-act-mp") }
        if let reason = backend.unsupportedReason(floatPrecision: modelOptions.precision) { throw ValidationError(reason) }
    }

    func run() throws {
        let base = URL(fileURLWithPath: basePath)
        let log = try RunLog(base.appendingPathComponent("run.log"))
        let config = try modelOptions.loadConfig(basePath: base)
        var setup = QuantizedInferenceSetup(
            checkpoint: ckpt.map { URL(fileURLWithPath: $0) } ?? base.appendingPathComponent("ckpt.safetensors"),
            settings: try QuantSettings(config),
            weightBits: try configWeightMp.map { try BitConfig.load(URL(fileURLWithPath: $0)) },
            activationBits: try configActMp.map { try BitConfig.load(URL(fileURLWithPath: $0)) },
            actProtect: try actProtect.map { try BitConfig.loadLayerList(URL(fileURLWithPath: $0)) } ?? [],
            quantizeWeights: !skipQuantWeight, quantizeActivations: !skipQuantAct)
        if let actProtect { setup.actProtectSource = actProtect }
        setup.backend = backend
        setup.floatPrecision = modelOptions.precision
        try log.record("mixdq infer: checkpoint \(setup.checkpoint.path), weight MP \(configWeightMp ?? "uniform"), act MP \(configActMp ?? "uniform"), act-protect \(actProtect ?? "none")")
        let folder = try modelOptions.resolveModel(config, log: log)
        let pipeline = try TextToImagePipeline(folder: folder, precision: modelOptions.precision)
        // --precision is the UNet's float layers' here. The text encoders stay fp32, as beside a
        // deployable UNet (whose BOS table holds fp32 rows), so both give the same images.
        pipeline.textEncoderPrecision = .fp32
        var early: ImageGenerationJob?
        if try folder.quantizedUNetHeader() != nil {
            // A deployable quantized UNet carries its bits and parameters; nothing to apply.
            guard configWeightMp == nil, configActMp == nil, actProtect == nil, !skipQuantAct, !skipQuantWeight, backend != .fake, backend != .cuda else {
                throw CommandError("the UNet at \(try folder.component("unet").path) is already quantized (mixdq quantize): its bits are fixed and it runs on int8 (the CPU); drop --config-weight-mp / --config-act-mp / --act-protect / --skip-quant-* / --backend fake|cuda, or give the fp32 UNet")
            }
            // Its header was checked just now; the UNet itself loads after the text encoders are freed
            // (the two never resident together: a lower peak than the fp32 path's early load).
            log.info("quantized UNet (deployable, int8\(Int8Backend.floatLayersNote(modelOptions.precision))): \(try folder.component("unet").path)")
        } else {
            // Bit files must be complete (the original's are): no layer silently keeps the default.
            pipeline.configureUNet = { unet in try setup.deploy(to: unet, log: log) }
            // The UNet loads early, so its convolutions are planned here, for every image this shard
            // owns (a job whose settings are bad reports that below, after the checkpoint check).
            early = try? generation.job(config, pipeline: pipeline, basePath: base)
            if let early { log.info(early.planConvolutions(pipeline, images: early.ownedIndices.count)) }
            // Fail on a bad checkpoint or bit file before encoding prompts.
            _ = try pipeline.unet
        }
        let job = try early ?? generation.job(config, pipeline: pipeline, basePath: base)
        try job.run(pipeline, log: log)
        log.info("done")
        try log.check()
    }
}
