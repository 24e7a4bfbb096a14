import Foundation
import MixDQIO
#if canImport(Glibc)
import Glibc
#endif

/// The resume log of one shard's run, `<out>.journal`: the output file's header, then one score
/// line per finished layer, each appended in one write(2) and fsync'd before the next layer
/// starts. A rerun reads it back and measures only the layers it lacks.
///
/// A journal whose header differs from this run's (other flags, checkpoint, calibration file,
/// shard) is refused, naming the first difference, unless it holds no layer yet (then it is
/// replaced: nothing is lost). A last line without its newline is what a
/// kill during the write leaves: it is cut off and that layer measured again.
public final class SensitivityJournal {
    public let url: URL
    /// Scores already journaled, by layer.
    public private(set) var scores: [String: [Double]] = [:]
    private let fd: Int32

    /// Opens (or creates) the journal for `expected` (its header; its scores are ignored).
    public init(_ url: URL, expected: SensitivityFile) throws {
        self.url = url
        let header = expected.header
        if !FileManager.default.fileExists(atPath: url.path) {
            try AtomicFile.write(Data(header.utf8), to: url)
        }
        var text = try SensitivityJournal.read(url)
        if !text.hasPrefix(header), !text.split(separator: "\n").contains(where: { $0.hasPrefix("model.") }) {
            // Another run's journal with nothing measured (it stopped while preparing, e.g. on a bad
            // input since fixed): nothing is lost by starting this run's.
            try AtomicFile.write(Data(header.utf8), to: url)
            text = header
        }
        // Everything up to the last newline is whole; a tail after it is a torn write.
        let whole = text.lastIndex(of: "\n").map { String(text[...$0]) } ?? ""
        let torn = text.count - whole.count
        guard whole.hasPrefix(header) else {
            throw SensitivityError("\(url.path): this journal belongs to another run (\(SensitivityJournal.firstDifference(whole, header))); "
                                   + "remove it to start over, or rerun with the flags and inputs it was made with")
        }
        let owned = Set(expected.ownedLayers)
        for (n, line) in whole.dropFirst(header.count).split(separator: "\n").enumerated() {
            let lineNumber = header.split(separator: "\n").count + n + 1
            guard let (layer, values) = SensitivityFile.parseEntry(line), values.count == expected.columnCount else {
                throw SensitivityError("\(url.path), line \(lineNumber): not a score line of this run ('\(line.prefix(120))'); remove the journal to start over")
            }
            guard owned.contains(layer) else {
                throw SensitivityError("\(url.path), line \(lineNumber): layer '\(layer)' is not one this shard measures; remove the journal to start over")
            }
            scores[layer] = values
        }
        let fd = open(url.path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw SensitivityError("\(url.path): cannot open the journal for appending (\(String(cString: strerror(errno))))") }
        self.fd = fd
        if torn > 0 {
            guard ftruncate(fd, off_t(whole.utf8.count)) == 0 else {
                throw SensitivityError("\(url.path): cannot cut off the torn last line (\(String(cString: strerror(errno))))")
            }
            StandardError.write("note: \(url.path): dropped a torn last line (\(torn) character(s)); that layer is measured again\n")
        }
    }

    deinit { close(fd) }

    /// Appends one finished layer and makes it durable before returning.
    public func append(_ layer: String, _ values: [Double]) throws {
        let bytes = Array(SensitivityFile.entry(layer, values).utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else {
            throw SensitivityError("\(url.path): cannot append layer '\(layer)' (\(n < 0 ? String(cString: strerror(errno)) : "short write"))")
        }
        guard fsync(fd) == 0 else { throw SensitivityError("\(url.path): fsync failed (\(String(cString: strerror(errno))))") }
        scores[layer] = values
    }

    static func read(_ url: URL) throws -> String {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SensitivityError("\(url.path): cannot read the journal (\(FileErrorText.reason(error)))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SensitivityError("\(url.path): the journal is not UTF-8 text; remove it to start over")
        }
        return text
    }

    /// "key: found 'a', this run 'b'" for the first header line that differs.
    static func firstDifference(_ found: String, _ expected: String) -> String {
        let a = found.split(separator: "\n", omittingEmptySubsequences: false), b = expected.split(separator: "\n")
        for (i, want) in b.enumerated() {
            let got = i < a.count ? a[i] : ""
            if got != want { return "line \(i + 1): journal has '\(got.prefix(160))', this run '\(want.prefix(160))'" }
        }
        return "the header differs"
    }
}

extension SensitivityFile {
    /// Scores per layer: one per bit width of the identity's `bits`.
    var columnCount: Int { identity.first { $0.key == "bits" }?.value.split(separator: ",").count ?? 0 }
}
