import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline

/// One stage of `mixdq search run`: the `mixdq` command line it runs in-process, the files whose
/// content decides whether an earlier run of it still holds, what it writes, and the resume state
/// that must go when it starts over with other inputs.
struct SearchRunStage {
    let name: String
    /// The arguments after `mixdq` (e.g. ["search", "sensitivity", ...]).
    let arguments: [String]
    /// Files or folders read, fingerprinted by content.
    let inputs: [URL]
    /// Large files read, identified by size and modification time (the checkpoint).
    let largeInputs: [URL]
    /// Files or folders written.
    let outputs: [URL]
    /// Resume state and outputs of an earlier run with other inputs: removed before the stage
    /// runs afresh (a journal of other settings is refused; stale candidates would be selected).
    let staleState: [URL]

    /// What this stage's inputs, arguments and outputs are now; equal to the record of a finished
    /// run exactly when that run still holds.
    func record(outputsToo: Bool) throws -> SearchRunManifest.Record {
        var inputPrints: [String: String] = [:]
        for url in inputs { inputPrints[url.path] = try SearchRunManifest.fingerprint(url) }
        for url in largeInputs { inputPrints[url.path] = try RenderStamp.fileIdentity(url) }
        var outputPrints: [String: String] = [:]
        if outputsToo {
            for url in outputs { outputPrints[url.path] = try SearchRunManifest.fingerprint(url) }
        }
        return .init(arguments: arguments, inputs: inputPrints, outputs: outputPrints)
    }

    /// Why the stage must run, or nil when the manifest's record of it still holds.
    func reasonToRun(_ manifest: SearchRunManifest) -> String? {
        guard let recorded = manifest.stages[name] else { return "not run before" }
        if recorded.arguments != arguments { return "its arguments changed" }
        guard let now = try? record(outputsToo: false) else { return "an input is missing" }
        if let changed = now.inputs.keys.sorted().first(where: { recorded.inputs[$0] != now.inputs[$0] }) {
            return "\(changed) changed"
        }
        for url in outputs {
            guard let print = try? SearchRunManifest.fingerprint(url) else { return "\(url.path) is missing" }
            if recorded.outputs[url.path] != print { return "\(url.path) changed since it was written" }
        }
        return nil
    }

    /// Runs the command line in this process, as `mixdq` would (validation included).
    func run() throws {
        for url in staleState where FileManager.default.fileExists(atPath: url.path) {
            try FileManager.default.removeItem(at: url)
        }
        do {
            var command = try MixDQCommand.parseAsRoot(arguments)
            try command.run()
        } catch {
            throw CommandError("search run, stage '\(name)' (mixdq \(arguments.joined(separator: " "))): \(MixDQCommand.message(for: error))")
        }
    }
}

/// `search_run.json` in the output folder: per finished stage, its arguments and the fingerprints
/// of its inputs and outputs. Written after every stage (atomically), so a killed or failed run
/// resumes at the first stage whose record no longer holds.
struct SearchRunManifest: Codable {
    struct Record: Codable, Equatable {
        var arguments: [String]
        var inputs: [String: String]
        var outputs: [String: String]
    }

    static let fileName = "search_run.json"
    var version = 1
    var stages: [String: Record] = [:]

    static func load(_ url: URL) throws -> SearchRunManifest {
        guard FileManager.default.fileExists(atPath: url.path) else { return SearchRunManifest() }
        do {
            let manifest = try JSONDecoder().decode(SearchRunManifest.self, from: Data(contentsOf: url))
            guard manifest.version == 1 else { throw CommandError("version \(manifest.version), expected 1") }
            return manifest
        } catch {
            throw CommandError("\(url.path): not a search run manifest (\(error)); delete it to run every stage again")
        }
    }

    func write(_ url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: url)
    }

    /// A file's content fingerprint; a folder's is over its files' names and contents (one level:
    /// candidate folders and image folders are flat).
    static func fingerprint(_ url: URL) throws -> String {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw CommandError("\(url.path): missing")
        }
        guard isFolder.boolValue else { return try RenderStamp.fingerprint(of: url) }
        let names = try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
        var lines: [String] = []
        for name in names {
            let item = url.appendingPathComponent(name)
            var sub: ObjCBool = false
            if FileManager.default.fileExists(atPath: item.path, isDirectory: &sub), !sub.boolValue {
                lines.append("\(name) \(try RenderStamp.fingerprint(of: item))")
            }
        }
        return "folder " + RenderStamp.fingerprint(of: Data(lines.joined(separator: "\n").utf8))
    }
}
