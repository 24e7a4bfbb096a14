import Foundation
import MixDQIO
import MixDQQuant

/// MixDQ's YAML files. The first byte picks the reader: the experiment config (parsed, then
/// written back), a per-layer bit-width file, an act-protect layer list, a sensitivity score file
/// or a tensor-ratio file (the search's inputs).
enum MixDQYAMLFuzzTarget: FuzzTarget {
    static let name = "mixdq-yaml"

    static func run(_ input: Data) {
        guard let selector = input.first else { return }
        let url = FuzzScratch.write(input.dropFirst(), as: "fuzz.yaml")
        switch selector % 5 {
        case 0:
            if let config = try? MixDQConfig.load(url) { _ = try? config.yamlString() }
        case 1:
            if let bits = try? BitConfig.load(url) { _ = bits.yamlString() }
        case 2:
            _ = try? BitConfig.loadLayerList(url)
        case 3:
            _ = try? SensitivityScores.load(url, columns: [2, 4, 8])
        default:
            _ = try? LayerRatios.load(url)
        }
    }
}
