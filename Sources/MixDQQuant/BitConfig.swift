import Foundation
import MixDQIO
import Yams

/// A per-layer bit-width file in the original MixDQ format: a flat YAML mapping
/// `model.<diffusers path>: <bits>` (the `model.` prefix is optional here).
public struct BitConfig: Equatable {
    public var bits: [String: Int]
    public let source: String

    public init(bits: [String: Int], source: String) { self.bits = bits; self.source = source }

    public struct Invalid: Error, CustomStringConvertible, LocalizedError {
        public let description: String
        public var errorDescription: String? { description }
    }

    public static func strip(_ name: String) -> String { name.hasPrefix("model.") ? String(name.dropFirst(6)) : name }

    public static func load(_ url: URL) throws -> BitConfig {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw Invalid(description: "\(url.path): cannot read bit config (\(FileErrorText.reason(error)))")
        }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw Invalid(description: "\(url.path): not valid YAML (\(error))")
        }
        guard let mapping = node?.mapping else {
            throw Invalid(description: "\(url.path): expected a mapping 'model.<layer path>: <bits>'")
        }
        var bits: [String: Int] = [:]
        for (k, v) in mapping {
            guard let key = k.string else { throw Invalid(description: "\(url.path), line \(k.mark?.line ?? 0): key is not a string") }
            guard let b = v.int else {
                throw Invalid(description: "\(url.path), line \(v.mark?.line ?? 0): '\(key)': bits must be an integer, found '\(v.string ?? "?")'")
            }
            bits[strip(key)] = b
        }
        return BitConfig(bits: bits, source: url.path)
    }

    /// A list of layer paths (the act-protect list; `model.` prefix optional): a YAML list, or the
    /// original's `torch.save`d Python list (`act_sensitivie_a8_1%.pt`), told apart by content
    /// (zip magic), so a renamed file still reads and a `.pt` that is not a zip says so.
    public static func loadLayerList(_ url: URL) throws -> [String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw Invalid(description: "\(url.path): cannot read layer list (\(FileErrorText.reason(error)))")
        }
        let torchExtension = ["pt", "pth"].contains(url.pathExtension.lowercased())
        if TorchSavedList.isZipArchive(data) || torchExtension {
            do { return try TorchSavedList.read(url).map(strip) } catch let e as TorchSavedList.Invalid {
                throw Invalid(description: e.description)
            }
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Invalid(description: "\(url.path): cannot read layer list (not valid UTF-8 text, and not a torch.save zip archive)")
        }
        guard let seq = (try? Yams.compose(yaml: text))??.sequence else {
            throw Invalid(description: "\(url.path): expected a YAML list of layer paths (or the original's torch.save'd list, a zip archive)")
        }
        return try seq.map { n in
            guard let s = n.string else { throw Invalid(description: "\(url.path), line \(n.mark?.line ?? 0): entry is not a string") }
            return strip(s)
        }
    }

    public func yamlString() -> String {
        bits.keys.sorted().map { "model.\($0): \(bits[$0]!)" }.joined(separator: "\n") + "\n"
    }

    /// The original's bit files name every layer: weight files all of them, activation files all
    /// but the act-protect ones (mixdq-method.md §6.7). A layer left out would silently keep the
    /// config's default width, so a file that misses any is refused, listing the first few.
    /// `layers` in model order; `exempt` are the layers that need no entry.
    public func checkCovers(_ layers: [String], except exempt: Set<String> = []) throws {
        let missing = layers.filter { bits[$0] == nil && !exempt.contains($0) }
        guard !missing.isEmpty else { return }
        let shown = missing.prefix(5).joined(separator: ", ") + (missing.count > 5 ? ", ..." : "")
        let needed = layers.count - layers.filter { exempt.contains($0) }.count
        throw Invalid(description: "\(source): no bit width for \(missing.count) of the model's \(needed) layer(s) that need one: \(shown) "
            + "(a bit file must name every layer\(exempt.isEmpty ? "" : " not in the act-protect list"))")
    }

    /// Every layer must exist and every bit width must have calibrated parameters.
    func check(against sim: QuantSimulator) throws {
        try BitConfig.checkKnown(Array(bits.keys), in: sim, source: source)
        let bad = bits.filter { !sim.settings.bitWidths.contains($0.value) }.sorted { $0.key < $1.key }
        if !bad.isEmpty {
            let list = bad.prefix(10).map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            throw Invalid(description: "\(source): \(bad.count) layer(s) use bit widths without calibrated parameters (available: \(sim.settings.bitWidths.map(String.init).joined(separator: ", "))): \(list)")
        }
    }

    static func checkKnown(_ names: [String], in sim: QuantSimulator, source: String) throws {
        let unknown = names.filter { sim[$0] == nil }.sorted()
        if !unknown.isEmpty {
            throw Invalid(description: "\(source): \(unknown.count) unknown layer name(s): \(unknown.prefix(10).joined(separator: ", "))\(unknown.count > 10 ? ", ..." : "")")
        }
    }
}
