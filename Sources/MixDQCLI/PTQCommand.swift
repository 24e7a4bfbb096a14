import ArgumentParser

struct PTQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ptq", abstract: "Calibrate MixDQ quantization parameters for all bit widths (ptq.py).")
    @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
    func run() throws { throw NotBuiltYet(command: "ptq") }
}
