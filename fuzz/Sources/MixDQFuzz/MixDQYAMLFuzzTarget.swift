import Foundation
import MixDQIO
import MixDQQuant

/// MixDQ's YAML files. The first byte picks the reader: the experiment config (parsed, then
/// written back), a per-layer bit-width file, or an act-protect layer list.
enum MixDQYAMLFuzzTarget: FuzzTarget {
    static let name = "mixdq-yaml"

    static func run(_ input: Data) {
        guard let selector = input.first else { return }
        let url = FuzzScratch.write(input.dropFirst(), as: "fuzz.yaml")
        switch selector % 3 {
        case 0:
            if let config = try? MixDQConfig.load(url) { _ = try? config.yamlString() }
        case 1:
            if let bits = try? BitConfig.load(url) { _ = bits.yamlString() }
        default:
            _ = try? BitConfig.loadLayerList(url)
        }
    }
}
