import ArgumentParser
import Foundation
import MixDQPipeline

struct DefaultModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "default-model",
        abstract: "Write the embedded tiny SDXL-architecture pipeline (diffusers format, seeded random weights).")
    @Option(help: "Output folder (replaced atomically).") var output: String

    func run() throws {
        try DefaultModel.write(to: URL(fileURLWithPath: output))
        print("wrote \(DefaultModel.version) to \(output)")
    }
}
