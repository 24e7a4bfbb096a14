import ArgumentParser

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Sensitivity analysis, integer programming and selection of mixed-precision configs.")
    @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
    func run() throws { throw NotBuiltYet(command: "search") }
}
