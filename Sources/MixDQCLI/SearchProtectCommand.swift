import ArgumentParser
import Foundation
import MixDQIO
import MixDQModels
import MixDQPipeline
import MixDQQuant

/// `mixdq search protect`: the act-protect list (mixdq-method.md §6.4) from the activation
/// sensitivity files, as the YAML list `infer --act-protect` and `allocate --exclude` read.
struct SearchProtectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protect",
        abstract: "Write the act-protect list: the content layers with the lowest activation SSIM and the quality layers with the lowest activation SQNR at one bit width.")
    @Option(help: "Activation sensitivity of content layers, YAML 'model.<layer>: [s@2, s@4, s@8]' (SSIM).") var sensitivityContent: String
    @Option(help: "Activation sensitivity of quality layers (SQNR dB); layers of the content group in it are ignored.") var sensitivityQuality: String
    @Option(parsing: .unconditional, help: "Number of content layers to protect.") var content = 5
    @Option(parsing: .unconditional, help: "Number of quality layers to protect.") var quality = 4
    @Option(parsing: .unconditional, help: "The bit width whose scores rank the layers.") var bits = 8
    @Option(help: "The bit width of each column of the score files.") var scoreBits = "2,4,8"
    @Option(help: "A diffusers model folder (or UNet folder): every scored layer must be one of its UNet's layers.") var model: String?
    @Option(help: "Output YAML list of layer paths.") var out: String

    func validate() throws {
        _ = try SearchInputs.bits(scoreBits, flag: "--score-bits")
        guard (1...16).contains(bits) else { throw ValidationError("--bits \(bits): expected a bit width between 1 and 16") }
        guard content >= 0, quality >= 0 else { throw ValidationError("--content \(content) --quality \(quality): counts cannot be negative") }
        guard content + quality > 0 else { throw ValidationError("--content 0 --quality 0: protect at least one layer") }
    }

    func run() throws {
        let columns = try SearchInputs.bits(scoreBits, flag: "--score-bits")
        var modelLayers: [String]? = nil
        if let model {
            let folder = ModelFolder(URL(fileURLWithPath: model))
            let config = try UNetConfig.load(try folder.component("unet").appendingPathComponent("config.json"))
            modelLayers = try BenchUNet.layerPaths(config)
        }
        let choices = try ActProtection.select(ActProtection.Request(
            content: try SensitivityScores.load(SearchInputs.url(sensitivityContent), columns: columns),
            quality: try SensitivityScores.load(SearchInputs.url(sensitivityQuality), columns: columns),
            contentCount: content, qualityCount: quality, bits: bits, modelLayers: modelLayers,
            modelSource: model.map { "the UNet of \($0)" } ?? "the model"))
        try AtomicFile.write(Data(ActProtection.yaml(choices).utf8), to: SearchInputs.url(out))
        for c in choices {
            let score = c.group == .content ? String(format: "SSIM %.6f", c.score) : String(format: "SQNR %.3f dB", c.score)
            print("\(c.group.rawValue) \(c.path): \(score) at \(bits) bits")
        }
        print("wrote \(choices.count) layer(s) to \(out)")
    }
}
