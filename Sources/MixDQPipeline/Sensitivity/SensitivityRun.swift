import Foundation
import MixDQIO

/// One shard of a sensitivity run: measures the shard's layers not yet in the journal, appending
/// each as it finishes, then writes the output file atomically and removes the journal.
///
/// `out` is only ever the complete file: a killed run leaves `<out>.journal` (and the FP image
/// cache in `<out>.work/`), and the rerun continues from them.
public struct SensitivityRun {
    public let plan: SensitivityPlan
    public let identity: [(key: String, value: String)]
    public let output: URL
    /// Test hook: return after this many newly measured layers, as a kill between layers would.
    public var stopAfter: Int?

    public init(plan: SensitivityPlan, identity: [(key: String, value: String)], output: URL) {
        self.plan = plan; self.identity = identity; self.output = output
    }

    public var journalURL: URL { URL(fileURLWithPath: output.path + ".journal") }
    /// Cached inputs of this output (FP images), next to it.
    public var workFolder: URL { URL(fileURLWithPath: output.path + ".work") }

    /// The file this run writes, with `scores`.
    public func file(_ scores: [String: [Double]]) -> SensitivityFile {
        SensitivityFile(identity: identity, shard: plan.shard, runLayers: plan.layers, scores: scores)
    }

    public enum Outcome: Equatable {
        /// The output is written (`measured` layers were measured by this call).
        case complete(measured: Int)
        /// The output already held this run's complete result; nothing was measured.
        case alreadyComplete
        /// Stopped by `stopAfter` with the journal holding `journaled` layers.
        case stopped(journaled: Int)
    }

    /// Whether `output` already holds this run's complete result.
    public var isComplete: Bool {
        guard FileManager.default.fileExists(atPath: output.path), let existing = try? SensitivityFile.load(output) else { return false }
        return existing.header == file([:]).header && Set(existing.scores.keys) == Set(plan.shardLayers)
    }

    /// `prepare` is called once, only if some layer remains (it loads models, caches FP results);
    /// it returns the measurement of one layer. `report` receives a line per finished layer.
    public func run(prepare: () throws -> (String) throws -> [Double], report: (String) -> Void) throws -> Outcome {
        if isComplete {
            report("\(output.path) already holds this run's \(plan.shardLayers.count) layer(s); nothing to do")
            return .alreadyComplete
        }
        let journal = try SensitivityJournal(journalURL, expected: file([:]))
        let todo = plan.shardLayers.filter { journal.scores[$0] == nil }
        if !journal.scores.isEmpty {
            report("resuming from \(journalURL.path): \(journal.scores.count) of \(plan.shardLayers.count) layer(s) already measured")
        }
        var measured = 0
        if !todo.isEmpty {
            let measure = try prepare()
            var progress = SensitivityProgress(total: plan.shardLayers.count, alreadyDone: journal.scores.count)
            for layer in todo {
                if let stopAfter, measured >= stopAfter { return .stopped(journaled: journal.scores.count) }
                let values = try measure(layer)
                guard values.count == plan.bits.count, values.allSatisfy(\.isFinite) else {
                    throw SensitivityError("layer '\(layer)': the measurement gave \(values) for bits \(plan.bits)")
                }
                try journal.append(layer, values)
                measured += 1
                report(progress.finished(layer, values))
            }
        }
        try AtomicFile.write(Data(file(journal.scores).text.utf8), to: output)
        try? FileManager.default.removeItem(at: journalURL)
        try? FileManager.default.removeItem(at: workFolder)
        return .complete(measured: measured)
    }
}
