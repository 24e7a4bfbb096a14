import Foundation
import MixDQModels

/// A diffusers config.json. The first byte picks the config type (UNet, CLIP text encoder, VAE,
/// scheduler); the rest is the file, read through each type's own loader.
enum ConfigJSONFuzzTarget: FuzzTarget {
    static let name = "config-json"

    static func run(_ input: Data) {
        guard let selector = input.first else { return }
        let url = FuzzScratch.write(input.dropFirst(), as: "config.json")
        switch selector % 4 {
        case 0: _ = try? UNetConfig.load(url)
        case 1: _ = try? CLIPTextConfig.load(url)
        case 2: _ = try? VAEConfig.load(url)
        default: _ = try? SchedulerConfig.load(from: url)
        }
    }
}
