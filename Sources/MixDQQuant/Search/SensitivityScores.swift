import Foundation

/// A sensitivity file in the original's format, `model.<path>: [s@b1, s@b2, ...]`: one score per
/// candidate bit width (SSIM for content layers, SQNR dB for quality ones); higher is better.
public struct SensitivityScores: Equatable {
    /// The bit width of each column (the original's files: 2, 4, 8).
    public let columns: [Int]
    public var scores: [String: [Double]]
    public var layers: [String]
    public let source: String

    public init(columns: [Int], scores: [String: [Double]], layers: [String], source: String) {
        self.columns = columns; self.scores = scores; self.layers = layers; self.source = source
    }

    public static func load(_ url: URL, columns: [Int]) throws -> SensitivityScores {
        var scores: [String: [Double]] = [:], layers: [String] = []
        let expected = columns.map(String.init).joined(separator: ", ")
        for e in try LayerValueFile.entries(url, what: "sensitivity score file") {
            guard let seq = e.node.sequence else {
                throw SearchInputError("\(url.path), line \(e.line): '\(e.path)': expected a list of scores at bits [\(expected)]")
            }
            guard seq.count == columns.count else {
                throw SearchInputError("\(url.path), line \(e.line): '\(e.path)': \(seq.count) score(s), expected \(columns.count) (one per bit width \(expected); set --score-bits if the file has other columns)")
            }
            scores[e.path] = try seq.map { try LayerValueFile.number($0, file: url, path: e.path, line: e.line) }
            layers.append(e.path)
        }
        guard !layers.isEmpty else { throw SearchInputError("\(url.path): the score file names no layer") }
        return SensitivityScores(columns: columns, scores: scores, layers: layers, source: url.path)
    }

    /// The column of bit width `bits`, or an error naming the file and its columns.
    public func column(of bits: Int) throws -> Int {
        guard let c = columns.firstIndex(of: bits) else {
            throw SearchInputError("\(source): no score column for \(bits) bits (its columns are bits \(columns.map(String.init).joined(separator: ", ")))")
        }
        return c
    }
}
