import ArgumentParser

/// `mixdq search`: MixDQ's mixed-precision search (mixdq-method.md §6). Allocation, ratio files,
/// act protection and selection are built; the other stages say they are not built yet.
struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Sensitivity analysis, integer programming and selection of mixed-precision configs.",
        subcommands: [SearchAllocateCommand.self, SearchAllocateScanCommand.self, SearchRatiosCommand.self,
                      SearchNotBuilt.Sensitivity.self, SearchNotBuilt.Merge.self, SearchProtectCommand.self,
                      SearchSelectCommand.self, SearchNotBuilt.Run.self])
}

/// Search stages whose capability has not landed: each says so and exits non-zero.
enum SearchNotBuilt {
    struct Sensitivity: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "sensitivity", abstract: "Per-layer sensitivity (SSIM / SQNR) (not built yet).")
        @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
        func run() throws { throw NotBuiltYet(command: "search sensitivity") }
    }
    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "merge", abstract: "Join sensitivity shards (not built yet).")
        @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
        func run() throws { throw NotBuiltYet(command: "search merge") }
    }
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "The whole search chain (not built yet).")
        @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
        func run() throws { throw NotBuiltYet(command: "search run") }
    }
}
