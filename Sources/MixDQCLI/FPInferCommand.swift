import ArgumentParser

struct FPInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fp-infer", abstract: "Generate images with the full-precision pipeline (txt2img.py).")
    @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
    func run() throws { throw NotBuiltYet(command: "fp-infer") }
}
