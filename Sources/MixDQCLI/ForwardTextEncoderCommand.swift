import ArgumentParser

struct ForwardTextEncoder: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "text-encoder", abstract: "Not built yet.")
    @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
    func run() throws { throw NotBuiltYet(command: "forward text-encoder") }
}
