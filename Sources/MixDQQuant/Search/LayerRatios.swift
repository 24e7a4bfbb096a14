import Foundation

/// A tensor-ratio file (`optimize/tensor_ratio/...`): each layer's cost weight in the bit budget.
/// Weight ratios are parameter counts over `conv_in`'s, act ratios input elements per sample over
/// 320 (mixdq-method.md §6.5). Layers stay in file order, which is model order.
public struct LayerRatios: Equatable {
    public var layers: [String]
    public var ratio: [String: Double]
    public let source: String

    public init(layers: [String], ratio: [String: Double], source: String) {
        self.layers = layers; self.ratio = ratio; self.source = source
    }

    public static func load(_ url: URL) throws -> LayerRatios {
        var layers: [String] = [], ratio: [String: Double] = [:]
        for e in try LayerValueFile.entries(url, what: "ratio file") {
            let v = try LayerValueFile.number(e.node, file: url, path: e.path, line: e.line)
            guard v > 0 else { throw SearchInputError("\(url.path), line \(e.line): '\(e.path)': a ratio must be positive, found \(v)") }
            layers.append(e.path); ratio[e.path] = v
        }
        guard !layers.isEmpty else { throw SearchInputError("\(url.path): the ratio file names no layer") }
        return LayerRatios(layers: layers, ratio: ratio, source: url.path)
    }

    /// `model.<path>: value`, one per line, in model order (the original's format).
    public func yamlString() -> String {
        layers.map { "model.\($0): \(Self.format(ratio[$0] ?? 0))" }.joined(separator: "\n") + "\n"
    }

    /// Shortest text that reads back as the same Double.
    static func format(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(format: "%.1f", v) : "\(v)" }
}
