import Foundation
import MixDQIO

/// A sensitivity score file: the original's YAML mapping `model.<path>: [s@b1, s@b2, ...]`
/// (what `SensitivityScores` and `search allocate` read), preceded by comment lines that identify
/// the run, the shard and every layer of the run, so that `search merge` can prove a set of shard
/// files complete and consistent. YAML readers skip the comments.
///
///     # mixdq search sensitivity (format 1)
///     # type: weight                      <- identity: the same for every shard of a run
///     # ...
///     # shard: 0/2
///     # run-layers: 3
///     # run-layer: model.conv_in          <- one per layer of the run (all shards), model order
///     model.conv_in: [22.16, 35.06, 59.26]
///
/// Values are written as the shortest decimal that reads back as the same Double, so a score
/// equals a direct measurement to the last digit and shards merge by exact comparison.
public struct SensitivityFile: Equatable {
    public static let formatLine = "# mixdq search sensitivity (format 1)"

    /// (key, value) pairs that identify the run (not the shard).
    public var identity: [(key: String, value: String)]
    public var shard: Shard
    /// Every layer of the run, model order (`model.`-less paths).
    public var runLayers: [String]
    /// Scores of the layers this file holds, by path.
    public var scores: [String: [Double]]

    public init(identity: [(key: String, value: String)], shard: Shard, runLayers: [String], scores: [String: [Double]]) {
        self.identity = identity; self.shard = shard; self.runLayers = runLayers; self.scores = scores
    }

    public static func == (a: SensitivityFile, b: SensitivityFile) -> Bool {
        a.identity.map { "\($0.key)=\($0.value)" } == b.identity.map { "\($0.key)=\($0.value)" }
            && a.shard == b.shard && a.runLayers == b.runLayers && a.scores == b.scores
    }

    /// The comment block (format line, identity, shard, run layers).
    public var header: String {
        var lines = [SensitivityFile.formatLine]
        lines += identity.map { "# \($0.key): \($0.value)" }
        lines.append("# shard: \(shard)")
        lines.append("# run-layers: \(runLayers.count)")
        lines += runLayers.map { "# run-layer: model.\($0)" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The whole file: header, then the held layers' scores in run (model) order.
    public var text: String {
        header + runLayers.compactMap { l in scores[l].map { SensitivityFile.entry(l, $0) } }.joined()
    }

    /// One score line, newline included.
    public static func entry(_ layer: String, _ values: [Double]) -> String {
        "model.\(layer): [\(values.map { "\($0)" }.joined(separator: ", "))]\n"
    }

    /// Parses one score line (without its newline), or nil when it is not one.
    public static func parseEntry(_ line: Substring) -> (layer: String, values: [Double])? {
        guard line.hasPrefix("model."), let colon = line.range(of: ": ["), line.hasSuffix("]") else { return nil }
        let layer = String(line[line.index(line.startIndex, offsetBy: 6)..<colon.lowerBound])
        let inner = line[colon.upperBound..<line.index(before: line.endIndex)]
        let values = inner.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !layer.isEmpty, !values.isEmpty, values.allSatisfy({ $0?.isFinite == true }) else { return nil }
        return (layer, values.map { $0! })
    }

    /// Reads a file written by `text` (a shard or a whole run); anything else is an error naming
    /// the file and line. Every entry must have one score per bit width of the identity's `bits`.
    public static func parse(_ text: String, source: String) throws -> SensitivityFile {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard text.hasSuffix("\n") else {
            throw SensitivityError("\(source): does not end with a newline (cut off while being written?)")
        }
        lines.removeLast()
        guard lines.first.map(String.init) == formatLine else {
            throw SensitivityError("\(source), line 1: not a mixdq sensitivity file (expected '\(formatLine)')")
        }
        var identity: [(key: String, value: String)] = []
        var shard: Shard?
        var declared: Int?
        var runLayers: [String] = []
        var scores: [String: [Double]] = [:]
        for (n, line) in lines.enumerated().dropFirst() {
            let at = "\(source), line \(n + 1)"
            if line.hasPrefix("# ") {
                guard scores.isEmpty else { throw SensitivityError("\(at): a comment after the scores began") }
                let body = line.dropFirst(2)
                guard let sep = body.range(of: ": ") else { throw SensitivityError("\(at): expected '# key: value', found '\(line)'") }
                let key = String(body[..<sep.lowerBound]), value = String(body[sep.upperBound...])
                switch key {
                case "shard":
                    guard let s = Shard(value) else { throw SensitivityError("\(at): shard '\(value)' is not I/N with 0 <= I < N") }
                    shard = s
                case "run-layers":
                    guard let c = Int(value), c > 0 else { throw SensitivityError("\(at): run-layers '\(value)' is not a positive count") }
                    declared = c
                case "run-layer":
                    guard value.hasPrefix("model."), value.count > 6 else { throw SensitivityError("\(at): run-layer '\(value)' is not model.<path>") }
                    runLayers.append(String(value.dropFirst(6)))
                default:
                    guard shard == nil else { throw SensitivityError("\(at): '\(key)' after the shard line") }
                    identity.append((key, value))
                }
                continue
            }
            guard let (layer, values) = parseEntry(line) else {
                throw SensitivityError("\(at): expected 'model.<layer>: [score, ...]', found '\(line.prefix(120))'")
            }
            guard scores[layer] == nil else { throw SensitivityError("\(at): layer '\(layer)' given twice") }
            if let bits = identity.first(where: { $0.key == "bits" })?.value, bits.split(separator: ",").count != values.count {
                throw SensitivityError("\(at): layer '\(layer)' has \(values.count) score(s), the run's bits are \(bits)")
            }
            scores[layer] = values
        }
        guard let shard else { throw SensitivityError("\(source): no '# shard: I/N' line") }
        guard let declared, declared == runLayers.count else {
            throw SensitivityError("\(source): declares \(declared.map(String.init) ?? "no") run-layers but lists \(runLayers.count) run-layer line(s)")
        }
        guard Set(runLayers).count == runLayers.count else { throw SensitivityError("\(source): a run-layer is listed twice") }
        let known = Set(runLayers)
        if let stray = scores.keys.sorted().first(where: { !known.contains($0) }) {
            throw SensitivityError("\(source): layer '\(stray)' has scores but is not one of the run's layers")
        }
        return SensitivityFile(identity: identity, shard: shard, runLayers: runLayers, scores: scores)
    }

    public static func load(_ url: URL) throws -> SensitivityFile {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw SensitivityError("\(url.path): cannot read (\(FileErrorText.reason(error)))")
        }
        return try parse(text, source: url.path)
    }

    /// The layers of the run this file's shard owns (positions p with p % N == I).
    public var ownedLayers: [String] { runLayers.enumerated().filter { shard.owns($0.offset) }.map(\.element) }
}
