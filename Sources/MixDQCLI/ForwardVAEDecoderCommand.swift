import ArgumentParser

struct ForwardVAEDecoder: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vae-decoder", abstract: "Not built yet.")
    @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
    func run() throws { throw NotBuiltYet(command: "forward vae-decoder") }
}
