import ArgumentParser
import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

extension Precision: ExpressibleByArgument {}

/// `mixdq forward <component>`: run one model component on tensors from a safetensors file.
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run one model component on tensors from a safetensors file (checks a model; used for parity).",
        subcommands: [ForwardUNet.self, ForwardTextEncoder.self, ForwardTextEncoder2.self, ForwardVAEDecoder.self])
}

struct ForwardIO: ParsableArguments {
    @Option(help: "A diffusers pipeline folder, or the component's own folder.") var model: String
    @Option(help: "Input tensors (safetensors).") var input: String
    @Option(help: "Where to write the result (safetensors, tensor 'out').") var output: String
    @Option(help: "fp32 or bf16.") var precision: Precision = .fp32
}

struct ForwardUNet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unet",
        abstract: "Run the UNet on 'sample', 'timestep', 'encoder_hidden_states' (+ SDXL 'text_embeds', 'time_ids'; + 'timestep_cond', optional, for UNets with time_cond_proj_dim).")
    @OptionGroup var io: ForwardIO

    func run() throws {
        let unet = try ModelFolder(URL(fileURLWithPath: io.model)).loadUNet(precision: io.precision, packForInference: true)
        let file = try SafetensorsFile(URL(fileURLWithPath: io.input))
        func need(_ key: String) throws -> Tensor {
            guard file.contains(key) else { throw CommandError("\(io.input): missing input tensor '\(key)'") }
            return try file.floatTensor(key)
        }
        let sdxl = unet.config.hasTextTimeEmbedding
        let inputs = UNetInputs(sample: try need("sample"), timesteps: try need("timestep").scalars,
                                encoderHiddenStates: try need("encoder_hidden_states"),
                                textEmbeds: sdxl ? try need("text_embeds") : nil,
                                timeIds: sdxl ? try need("time_ids") : nil,
                                timestepCond: file.contains("timestep_cond") ? try need("timestep_cond") : nil)
        // Shape errors name the tensor; the file is named here.
        do { try unet.validate(inputs) } catch let error as UNetInputError { throw CommandError("\(io.input): \(error.message)") }
        let out = try unet(inputs)
        try SafetensorsWriter.write([("out", out)], to: URL(fileURLWithPath: io.output))
    }
}
