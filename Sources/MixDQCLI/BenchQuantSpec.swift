import Foundation
import MixDQQuant

/// What `mixdq bench unet --quant` quantizes with: one weight bit width for every layer (`w8a8`, or
/// `w<b>a8` for b in 2...8; `w<b>a16` for weight-only layers) or a per-layer weight bit file in the
/// original MixDQ format (`model.<layer path>: bits`, 8-bit activations). A8 layers run the integer
/// kernels on u8 codes; A16 layers run fp32 or bf16 on the dequantized weight.
enum BenchQuantSpec {
    case uniform(bits: Int, weightOnly: Bool)
    case file(BitConfig)

    static let integerBits = 2...8

    static func parse(_ text: String) throws -> BenchQuantSpec {
        let lower = text.lowercased()
        for (suffix, weightOnly) in [("a8", false), ("a16", true)] where lower.hasPrefix("w") && lower.hasSuffix(suffix) {
            guard let bits = Int(lower.dropFirst().dropLast(suffix.count)), integerBits.contains(bits) else {
                throw BenchQuantSpecError.unknown(text)
            }
            return .uniform(bits: bits, weightOnly: weightOnly)
        }
        let looksLikeFile = lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") || text.contains("/")
            || FileManager.default.fileExists(atPath: text)
        guard looksLikeFile else { throw BenchQuantSpecError.unknown(text) }
        return .file(try BitConfig.load(URL(fileURLWithPath: text)))   // names the file when it cannot be read
    }

    /// As printed and in JSON: `w8a8`, or the bit file's name.
    var label: String {
        switch self {
        case .uniform(let bits, let weightOnly): return "w\(bits)a\(weightOnly ? 16 : 8)"
        case .file(let config): return URL(fileURLWithPath: config.source).lastPathComponent
        }
    }

    func bits(for path: String) -> Int? {
        switch self {
        case .uniform(let bits, _): return bits
        case .file(let config): return config.bits[path]
        }
    }

    /// True when every layer keeps FP activations (A16).
    var weightOnly: Bool {
        if case .uniform(_, let weightOnly) = self { return weightOnly }
        return false
    }

    /// A bit file must name exactly the model's layers, each with an integer-path width.
    func check(layers: [String]) throws {
        guard case .file(let config) = self else { return }
        let known = Set(layers)
        let unknown = config.bits.keys.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty { throw BenchQuantSpecError.unknownLayers(source: config.source, unknown) }
        try config.checkCovers(layers)
        if let (layer, bits) = config.bits.sorted(by: { $0.key < $1.key }).first(where: { !Self.integerBits.contains($0.value) }) {
            throw BenchQuantSpecError.badBits(source: config.source, layer: layer, bits: bits)
        }
    }
}

enum BenchQuantSpecError: Error, LocalizedError, CustomStringConvertible {
    case unknown(String)
    case noBits(layer: String)
    case unknownLayers(source: String, [String])
    case badBits(source: String, layer: String, bits: Int)

    var description: String {
        switch self {
        case .unknown(let text):
            return "--quant: unknown quantization '\(text)': give w8a8 (or w<bits>a8 / w<bits>a16, bits 2...8) or a weight bit file (YAML 'model.<layer path>: bits')"
        case .noBits(let layer):
            return "--quant: no weight bit width for layer '\(layer)'"
        case .unknownLayers(let source, let names):
            return "\(source): \(names.count) unknown layer name(s) for this UNet: \(names.prefix(10).joined(separator: ", "))\(names.count > 10 ? ", ..." : "")"
        case .badBits(let source, let layer, let bits):
            return "\(source): '\(layer)': \(bits)-bit weights have no integer path (the int8 backend takes \(BenchQuantSpec.integerBits.lowerBound)...\(BenchQuantSpec.integerBits.upperBound) bits)"
        }
    }
    var errorDescription: String? { description }
}
