import ArgumentParser
import Foundation
import MixDQPipeline

struct DefaultModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "default-model",
        abstract: "Write the embedded tiny SDXL-architecture pipeline (diffusers format): the trained one (assets/trained-tiny-sdxl), or the seeded random one.")
    @Option(help: "Output folder: must not exist, be empty, or hold a model this command wrote (then it is replaced atomically); anything else is refused.") var output: String
    @Flag(help: "The seeded random tiny model instead of the trained one (what the parity tests pin; also MIXDQ_DEFAULT_MODEL=random for commands without --model).")
    var random = false
    @Flag(help: "Full-size SDXL-Turbo architecture (configs/models/*.json) with random weights, F16 files (~7 GB): for memory and speed runs of the whole pipeline.")
    var fullSizeRandom = false

    func validate() throws {
        if random && fullSizeRandom { throw ValidationError("--random and --full-size-random exclude each other") }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: output)
        if fullSizeRandom {
            guard let configs = RepositoryPaths.file("configs/models") else { throw CommandError("configs/models not found") }
            try DefaultModel.write(to: folder, configs: .sdxlTurbo(configsFolder: configs), dtype: .f16)
            print("wrote a full-size random-weight SDXL-Turbo pipeline to \(output)")
        } else if random {
            try DefaultModel.write(to: folder)
            print("wrote \(DefaultModel.version) (random weights) to \(output)")
        } else {
            let assets = try TrainedModelAssets.locate()
            try DefaultModel.writeTrained(to: folder, from: assets)
            print("wrote \(try assets.label()) (trained) to \(output)")
        }
    }
}
