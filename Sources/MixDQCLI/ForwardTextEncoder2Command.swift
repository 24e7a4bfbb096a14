import ArgumentParser

struct ForwardTextEncoder2: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "text-encoder-2", abstract: "Not built yet.")
    @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
    func run() throws { throw NotBuiltYet(command: "forward text-encoder-2") }
}
