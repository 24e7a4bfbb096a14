import ArgumentParser
import Foundation
import MixDQPipeline

struct DefaultModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "default-model",
        abstract: "Write the embedded tiny SDXL-architecture pipeline (diffusers format, seeded random weights).")
    @Option(help: "Output folder: must not exist, be empty, or hold a model this command wrote (then it is replaced atomically); anything else is refused.") var output: String
    @Flag(help: "Full-size SDXL-Turbo architecture (configs/models/*.json) with random weights, F16 files (~7 GB): for memory and speed runs of the whole pipeline.")
    var fullSizeRandom = false

    func run() throws {
        if fullSizeRandom {
            guard let configs = RepositoryPaths.file("configs/models") else { throw CommandError("configs/models not found") }
            try DefaultModel.write(to: URL(fileURLWithPath: output), configs: .sdxlTurbo(configsFolder: configs), dtype: .f16)
            print("wrote a full-size random-weight SDXL-Turbo pipeline to \(output)")
        } else {
            try DefaultModel.write(to: URL(fileURLWithPath: output))
            print("wrote \(DefaultModel.version) to \(output)")
        }
    }
}
