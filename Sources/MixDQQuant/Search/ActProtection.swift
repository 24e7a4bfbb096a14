import Foundation

/// The act-protect list (mixdq-method.md §6.4): the content layers with the lowest activation SSIM
/// and the quality layers with the lowest activation SQNR at one bit width (the original: 5 + 4 at
/// 8 bits, "act_sensitivie_a8_1%.pt"). These layers later run fully FP under activation MP.
public enum ActProtection {
    public struct Request {
        /// Activation sensitivity of content layers (SSIM) and of quality layers (SQNR dB).
        public var content: SensitivityScores
        public var quality: SensitivityScores
        public var contentCount: Int
        public var qualityCount: Int
        public var bits: Int
        /// The model's layers, when known: every scored layer must be one of them.
        public var modelLayers: [String]?
        public var modelSource: String

        public init(content: SensitivityScores, quality: SensitivityScores, contentCount: Int = 5, qualityCount: Int = 4,
                    bits: Int = 8, modelLayers: [String]? = nil, modelSource: String = "the model") {
            self.content = content; self.quality = quality; self.contentCount = contentCount; self.qualityCount = qualityCount
            self.bits = bits; self.modelLayers = modelLayers; self.modelSource = modelSource
        }
    }

    /// One protected layer and why it was chosen.
    public struct Choice: Equatable {
        public var path: String
        public var group: LayerGroup
        public var score: Double
    }

    /// The chosen layers: the content ones first, then the quality ones, each lowest score first (ties
    /// in file order). A score file may hold layers of the other group (the original's SQNR files
    /// score all 794 layers); they are left out, as the original's scripts do.
    public static func select(_ r: Request) throws -> [Choice] {
        guard r.contentCount >= 0, r.qualityCount >= 0, r.contentCount + r.qualityCount > 0 else {
            throw SearchInputError("--content \(r.contentCount) --quality \(r.qualityCount): ask for at least one layer, and no negative count")
        }
        if let known = r.modelLayers.map(Set.init) {
            for file in [r.content, r.quality] {
                let unknown = file.layers.filter { !known.contains($0) }
                if !unknown.isEmpty {
                    throw SearchInputError("\(file.source): \(unknown.count) layer(s) unknown to \(r.modelSource): \(SearchInputError.list(unknown))")
                }
            }
        }
        try checkSSIMRange(r.content)
        let content = try lowest(r.content, group: .content, count: r.contentCount, bits: r.bits, flag: "--content")
        let quality = try lowest(r.quality, group: .quality, count: r.qualityCount, bits: r.bits, flag: "--quality")
        return content + quality
    }

    /// The YAML list `infer --act-protect` and `--exclude` read (BitConfig.loadLayerList), with the
    /// original's `model.` prefix.
    public static func yaml(_ choices: [Choice]) -> String {
        choices.map { "- model.\($0.path)" }.joined(separator: "\n") + "\n"
    }

    static func lowest(_ file: SensitivityScores, group: LayerGroup, count: Int, bits: Int, flag: String) throws -> [Choice] {
        guard count > 0 else { return [] }
        let column = try file.column(of: bits)
        let layers = file.layers.filter { group.contains($0) }
        guard layers.count >= count else {
            throw SearchInputError("\(file.source): \(flag) \(count) asks for \(count) \(group.rawValue) layer(s), the file scores only \(layers.count)"
                + " (\(group == .content ? "content: path contains attn2 or ff" : "quality: every other layer"))")
        }
        // Sorting indices keeps equal scores in file order.
        let ranked = layers.enumerated().sorted { a, b in
            let sa = file.scores[a.element]?[column] ?? 0, sb = file.scores[b.element]?[column] ?? 0
            return sa != sb ? sa < sb : a.offset < b.offset
        }
        return ranked.prefix(count).map { Choice(path: $0.element, group: group, score: file.scores[$0.element]?[column] ?? 0) }
    }

    /// SSIM lies in [-1, 1]; a content file outside it is most likely the SQNR file given in its place.
    static func checkSSIMRange(_ file: SensitivityScores) throws {
        for path in file.layers where LayerGroup.content.contains(path) {
            if let bad = file.scores[path]?.first(where: { abs($0) > 1 }) {
                throw SearchInputError("\(file.source): '\(path)' has content score \(bad), outside SSIM's range [-1, 1] (is this the SQNR file? content layers are scored by SSIM)")
            }
        }
    }
}
