import ArgumentParser

struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "infer", abstract: "Generate images with the quantized UNet (quant_txt2img.py).")
    @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
    func run() throws { throw NotBuiltYet(command: "infer") }
}
