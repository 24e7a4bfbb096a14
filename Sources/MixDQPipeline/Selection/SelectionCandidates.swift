import Foundation
import MixDQIO
import MixDQQuant

/// Which phase of the original's selection (mixdq-method.md §6.6) runs: weight candidates (with
/// activations unquantized, as the original's weight phase), or activation candidates under a
/// fixed weight config and the act-protect list.
public enum SelectionKind: String, CaseIterable, Sendable {
    case weight, act

    /// The file prefix `search allocate-scan` writes (`weight_<a>_<k>.yaml`, `act_<a>_<k>.yaml`).
    public var filePrefix: String { rawValue + "_" }
}

/// One candidate bit config of a scan folder.
public struct SelectionCandidate: Equatable {
    /// The file name without `.yaml` (`weight_4.97_0.86`): the candidate's name in reports and its image folder.
    public var name: String
    public var url: URL
    public var bits: BitConfig

    /// The candidate files of `folder` for `kind`, sorted by name; an empty folder, or one whose
    /// files cannot be read as bit configs, is an error naming it.
    public static func load(folder: URL, kind: SelectionKind) throws -> [SelectionCandidate] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder.path) } catch {
            throw SearchInputError("\(folder.path): cannot list the candidate folder (\(FileErrorText.reason(error)))")
        }
        let files = names.filter { $0.hasPrefix(kind.filePrefix) && $0.hasSuffix(".yaml") }.sorted()
        guard !files.isEmpty else {
            throw SearchInputError("\(folder.path): no candidate \(kind.filePrefix)*.yaml (the files `mixdq search allocate-scan --type \(kind.rawValue)` writes)")
        }
        return try files.map { file in
            let url = folder.appendingPathComponent(file)
            return SelectionCandidate(name: String(file.dropLast(5)), url: url, bits: try BitConfig.load(url))
        }
    }
}
