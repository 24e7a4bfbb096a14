import Foundation
import ZIPFoundation

/// A Python list of strings saved with `torch.save` (the original MixDQ's act-protect list,
/// `act_sensitivie_a8_1%.pt`): a zip archive whose entries sit under one top-level folder
/// (`<name>/data.pkl`, `<name>/version`, `<name>/byteorder`, `<name>/.data/serialization_id`);
/// `data.pkl` is read by `PickledStringList`, which accepts nothing but a list of `str`.
public enum TorchSavedList {
    public struct Invalid: Error, CustomStringConvertible, LocalizedError, Equatable {
        public let description: String
        public var errorDescription: String? { description }
    }

    /// Local file header and empty-archive signatures: what torch.save's files start with.
    public static func isZipArchive(_ data: Data) -> Bool {
        let head = [UInt8](data.prefix(4))
        return head == [0x50, 0x4B, 0x03, 0x04] || head == [0x50, 0x4B, 0x05, 0x06]
    }

    /// torch.save before PyTorch 1.6 (or `_use_new_zipfile_serialization=False`) wrote a bare
    /// pickle stream starting with protocol 2 and a magic number.
    static func isLegacyTorchSave(_ data: Data) -> Bool {
        let head = [UInt8](data.prefix(2))
        return head == [0x80, 0x02] && !isZipArchive(data)
    }

    /// A list of layer names is a few KB; anything this large is some other torch file.
    static let maxFileBytes = 64 << 20
    static let maxPickleBytes = 16 << 20
    static let maxEntries = 4096

    /// The strings of the list saved in the file at `url`.
    public static func read(_ url: URL) throws -> [String] {
        let head: Data
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            head = try handle.read(upToCount: 4) ?? Data()
        } catch {
            throw Invalid(description: "\(url.path): cannot read (\(FileErrorText.reason(error)))")
        }
        guard isZipArchive(head) else {
            if isLegacyTorchSave(head) {
                throw Invalid(description: "\(url.path): torch.save's legacy (non-zip) format; load it and save it again with a current PyTorch")
            }
            throw Invalid(description: "\(url.path): not a zip archive (torch.save writes one); found \(head.isEmpty ? "an empty file" : "other content")")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxFileBytes else {
            throw Invalid(description: "\(url.path): \(size) bytes, too large for a torch.save'd list of layer names (limit \(maxFileBytes))")
        }
        // ZIPFoundation traps on offsets past Int64.max: bound every one by the file first.
        do {
            try ZipBoundsCheck.check([UInt8](try Data(contentsOf: url)), maxEntries: maxEntries)
        } catch let failure as ZipBoundsCheck.Failure {
            throw Invalid(description: "\(url.path): damaged zip archive (\(failure.reason))")
        } catch {
            throw Invalid(description: "\(url.path): cannot read (\(FileErrorText.reason(error)))")
        }
        // File-backed on purpose: ZIPFoundation's in-memory archive traps on a seek past the end
        // (found by fuzzing), its FILE* path reports a short read instead.
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read) } catch {
            throw Invalid(description: "\(url.path): damaged zip archive (\(error))")
        }
        return try strings(in: archive, source: url.path)
    }

    private static func strings(in archive: Archive, source: String) throws -> [String] {
        var entries: [Entry] = []
        for entry in archive {
            entries.append(entry)
            guard entries.count <= maxEntries else {
                throw Invalid(description: "\(source): more than \(maxEntries) zip entries; not a torch.save'd list")
            }
        }
        let roots = Set(entries.map { $0.path.split(separator: "/", omittingEmptySubsequences: false).first.map(String.init) ?? "" })
        guard roots.count == 1, let root = roots.first, !root.isEmpty else {
            throw Invalid(description: "\(source): zip entries under \(roots.count) top-level folders (torch.save puts all under one): "
                          + roots.sorted().prefix(5).joined(separator: ", "))
        }
        let pickleName = "\(root)/data.pkl"
        guard let pickle = entries.first(where: { $0.path == pickleName }), pickle.type == .file else {
            throw Invalid(description: "\(source): no '\(pickleName)' in the zip archive (entries: "
                          + entries.prefix(5).map(\.path).joined(separator: ", ") + ")")
        }
        if let storage = entries.first(where: { $0.path.hasPrefix("\(root)/data/") }) {
            throw Invalid(description: "\(source): holds tensor data ('\(storage.path)'); expected a list of layer-name strings")
        }
        guard pickle.uncompressedSize <= UInt64(maxPickleBytes) else {
            throw Invalid(description: "\(source): '\(pickleName)' is \(pickle.uncompressedSize) bytes, too large for a list of layer names")
        }
        var bytes = Data()
        do {
            // extract(_:consumer:) returns the CRC32 of what it read but does not compare it.
            let crc = try archive.extract(pickle) { chunk in
                guard bytes.count + chunk.count <= maxPickleBytes else { throw Invalid(description: "too large") }
                bytes.append(chunk)
            }
            guard crc == pickle.checksum else {
                throw Invalid(description: "CRC32 mismatch (the archive is damaged)")
            }
        } catch let e as Invalid {
            throw Invalid(description: "\(source): '\(pickleName)': \(e.description)")
        } catch {
            throw Invalid(description: "\(source): cannot extract '\(pickleName)' (\(error): the archive is damaged)")
        }
        do {
            return try PickledStringList.parse(bytes, source: "\(source) (\(pickleName))")
        } catch let e as PickledStringList.Invalid {
            throw Invalid(description: e.description)
        }
    }
}
