import ArgumentParser

/// `mixdq search`: MixDQ's mixed-precision search (mixdq-method.md §6). Sensitivity, merge,
/// allocation, ratio files, act protection and selection are built; `run` says it is not built yet.
struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Sensitivity analysis, integer programming and selection of mixed-precision configs.",
        subcommands: [SearchAllocateCommand.self, SearchAllocateScanCommand.self, SearchRatiosCommand.self,
                      SearchSensitivityCommand.self, SearchMergeCommand.self, SearchProtectCommand.self,
                      SearchSelectCommand.self, SearchNotBuilt.Run.self])
}

/// Search stages whose capability has not landed: each says so and exits non-zero.
enum SearchNotBuilt {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "The whole search chain (not built yet).")
        @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
        func run() throws { throw NotBuiltYet(command: "search run") }
    }
}
