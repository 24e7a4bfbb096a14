import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline

/// `mixdq search merge`: joins the shard files of one sensitivity run into the file an unsharded
/// run writes; refuses shards of different runs, missing or overlapping shards, unfinished or
/// corrupt shard files and layers measured twice with different values.
struct SearchMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Join sensitivity shard files (search sensitivity --shard I/N) into one score file.")
    @Argument(help: "The shard files, in any order.") var shards: [String]
    @Option(help: "The joined score file.") var out: String

    func validate() throws {
        guard !shards.isEmpty else { throw ValidationError("give the shard files to join") }
    }

    func run() throws {
        let merged = try SensitivityMerge.merge(shards.map { URL(fileURLWithPath: $0) })
        try AtomicFile.write(Data(merged.text.utf8), to: URL(fileURLWithPath: out))
        print("wrote \(out): \(merged.runLayers.count) layer(s) from \(shards.count) shard file(s)")
    }
}
