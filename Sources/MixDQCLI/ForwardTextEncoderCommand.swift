import ArgumentParser
import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// `mixdq forward text-encoder`: SDXL's text_encoder (CLIPTextModel) on `input_ids`.
struct ForwardTextEncoder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text-encoder",
        abstract: "Run text_encoder on 'input_ids' [B,T] (float32 or int64); writes 'out' (hidden_states[-2]), "
            + "'last_hidden_state', 'pooler_output'.")
    @OptionGroup var io: ForwardIO

    func run() throws { try TextEncoderForward.run(component: "text_encoder", io: io) }
}

/// What both text-encoder forward commands share: load the component, read ids, write the named outputs.
enum TextEncoderForward {
    /// Builds the CLIP encoder in `component` of a pipeline folder (or that component folder itself).
    static func load(model: String, component: String, precision: Precision) throws -> CLIPTextModel {
        let dir = try ModelFolder(URL(fileURLWithPath: model)).component(component)
        let config = try CLIPTextConfig.load(dir.appendingPathComponent("config.json"))
        let weights = try SafetensorsWeightSource.open(folder: dir, ignoredKeyPatterns: CLIPTextModel.ignoredKeyPatterns)
        return try CLIPTextModel(config: config, weights: weights, precision: precision, packForInference: true)
    }

    /// `input_ids` as stored by torch (I64, I32) or alongside the other float inputs (F32 etc.).
    static func readIDs(_ url: URL, key: String = "input_ids") throws -> [[Int32]] {
        let file = try SafetensorsFile(url)
        guard file.contains(key) else { throw CommandError("\(url.path): missing input tensor '\(key)'") }
        let (dtype, shape) = try file.info(key)
        switch dtype {
        case .i64:
            return try CLIPTextModel.inputIDs(int64: try file.rawBytes(key), shape: shape, name: "\(url.path): \(key)")
        case .i32:
            // Widen to the int64 layout the decoder checks.
            let raw = try file.rawBytes(key)
            let wide = (0..<raw.count / 4).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
            return try wide.withUnsafeBytes {
                try CLIPTextModel.inputIDs(int64: $0, shape: shape, name: "\(url.path): \(key)")
            }
        default:
            return try CLIPTextModel.inputIDs(float: try file.floatTensor(key), name: "\(url.path): \(key)")
        }
    }

    /// Runs `encoder` on the ids in `input` and writes its outputs to `output`.
    static func run(_ encoder: CLIPTextModel, input: URL, output: URL) throws {
        let ids = try readIDs(input)
        let outputs: [(String, Tensor)]
        // Shape and vocabulary errors name the tensor; the file is named here.
        do { outputs = try encoder.forwardOutputs(ids: ids) } catch let error as CLIPInputError {
            throw CommandError("\(input.path): \(error.message)")
        }
        try SafetensorsWriter.write(outputs, to: output)
    }

    static func run(component: String, io: ForwardIO) throws {
        let encoder = try load(model: io.model, component: component, precision: io.precision)
        try run(encoder, input: URL(fileURLWithPath: io.input), output: URL(fileURLWithPath: io.output))
    }
}
