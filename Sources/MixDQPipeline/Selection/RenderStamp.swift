import Foundation
import MixDQIO
import MixDQQuant

/// The settings an image cache folder was rendered with (`render.txt` beside the images), so a
/// rerun reuses only images made with the same model, checkpoint, bits, prompts and sampling: a
/// folder stamped with other settings, or holding images but no stamp, is refused, never mixed.
public struct RenderStamp: Equatable {
    /// `key: value` lines, in order.
    public var lines: [String]

    public static let fileName = "render.txt"

    public init(_ entries: [(String, String)]) {
        lines = ["mixdq search select render settings v1"] + entries.map { "\($0.0): \($0.1)" }
    }

    public var text: String { lines.joined(separator: "\n") + "\n" }

    /// A 64-bit FNV-1a fingerprint of a file's bytes, as hex (enough to tell configs apart).
    public static func fingerprint(of url: URL) throws -> String {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SearchInputError("\(url.path): cannot read (\(FileErrorText.reason(error)))")
        }
        return fingerprint(of: data)
    }

    public static func fingerprint(of data: Data) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in data { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", h)
    }

    /// Size and modification time: a checkpoint is too large to hash on every run.
    public static func fileIdentity(_ url: URL) throws -> String {
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: url.path) } catch {
            throw SearchInputError("\(url.path): cannot read (\(FileErrorText.reason(error)))")
        }
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(url.path) (\(size) bytes, modified \(String(format: "%.3f", modified)))"
    }

    /// Stamps an empty or new folder, or checks the stamp of one rendered before.
    public func claim(_ folder: URL) throws {
        let url = folder.appendingPathComponent(Self.fileName)
        if let existing = try? String(contentsOf: url, encoding: .utf8) {
            let old = existing.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
            guard old != lines else { return }
            let differing = zip(old, lines).first { $0.0 != $0.1 }.map { "was '\($0.0)', now '\($0.1)'" } ?? "different settings"
            throw SearchInputError("\(folder.path): its images were rendered with other settings (\(differing)); delete the folder or pass another --work-dir")
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        if let png = names.first(where: { $0.hasSuffix(".png") }) {
            throw SearchInputError("\(folder.path): holds images (\(png)) but no \(Self.fileName), so their settings are unknown; delete the folder or pass another --work-dir")
        }
        try AtomicFile.write(Data(text.utf8), to: url)
    }
}
