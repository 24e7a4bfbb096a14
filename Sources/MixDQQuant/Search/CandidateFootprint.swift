import Foundation

/// What a candidate bit config costs, measured the way the allocation measures it: the
/// ratio-weighted mean bit width over the layers it names (protected layers left out, as the
/// allocation leaves them out), and the packed weight bytes `--max-bytes` counts.
public enum CandidateFootprint {
    /// Σ ratio·bits / Σ ratio over the quantized layers the config names.
    public static func meanBits(_ config: BitConfig, ratios: LayerRatios, excluding excluded: Set<String> = []) throws -> Double {
        let layers = ratios.layers.filter { config.bits[$0] != nil && !excluded.contains($0) }
        let uncovered = config.bits.keys.filter { ratios.ratio[$0] == nil && !excluded.contains($0) }.sorted()
        if !uncovered.isEmpty {
            throw SearchInputError("\(ratios.source): no ratio for \(uncovered.count) layer(s) named in \(config.source): \(SearchInputError.list(uncovered))")
        }
        guard !layers.isEmpty else { throw SearchInputError("\(config.source): names no quantized layer to average over") }
        let total = layers.reduce(0.0) { $0 + (ratios.ratio[$1] ?? 0) }
        return layers.reduce(0.0) { $0 + (ratios.ratio[$1] ?? 0) * Double(config.bits[$1] ?? 0) } / total
    }

    /// Bytes of every layer's weight as deployed: packed codes at the config's weight bits
    /// (2/4/8-bit: 1/4, 1/2, 1 byte per parameter, `BitAllocation.bytesPerParameter`), fp32 for
    /// the layers in `fpLayers` (act-protected layers run fully FP). `parameters`: weight elements
    /// per layer, in model order (`search ratios --type params`).
    public static func weightBytes(_ weightBits: BitConfig, parameters: LayerRatios, fpLayers: Set<String> = []) throws -> Double {
        var bytes = 0.0
        for path in parameters.layers {
            let count = parameters.ratio[path] ?? 0
            if fpLayers.contains(path) { bytes += 4 * count; continue }
            guard let b = weightBits.bits[path] else {
                throw SearchInputError("\(weightBits.source): no weight bit width for layer '\(path)' (a weight config must name every layer)")
            }
            guard let perParameter = BitAllocation.bytesPerParameter(bits: b) else {
                throw SearchInputError("\(weightBits.source): '\(path)': \(b)-bit weights have no packed size (packed widths are 2, 4 and 8 bits)")
            }
            bytes += perParameter * count
        }
        return bytes
    }
}
