import ArgumentParser

/// `mixdq search`: MixDQ's mixed-precision search (mixdq-method.md §6): each stage as its own
/// subcommand (sharding, merging, scans) and `run`, the whole chain in one resumable command.
struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Sensitivity analysis, integer programming and selection of mixed-precision configs.",
        subcommands: [SearchRunCommand.self, SearchSensitivityCommand.self, SearchMergeCommand.self, SearchProtectCommand.self,
                      SearchRatiosCommand.self, SearchAllocateCommand.self, SearchAllocateScanCommand.self,
                      SearchSelectCommand.self])
}
