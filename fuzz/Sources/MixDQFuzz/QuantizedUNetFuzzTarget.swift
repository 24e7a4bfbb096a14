import Foundation
import MixDQCompute
import MixDQIO
import MixDQQuant

/// The deployable quantized UNet's loader (`QuantizedUNetKernels`): the input is a safetensors file;
/// its `layers` metadata is parsed and every layer it lists is built as a small Linear (4 -> 3, BOS-aware
/// K/V role, so codes, scales, zero points and token-0 tables are all read and checked) or, for
/// names ending in "conv", a 3x3 convolution with a split input (2 + 2 channels).
enum QuantizedUNetFuzzTarget: FuzzTarget {
    static let name = "quantized-unet"

    static func run(_ input: Data) {
        let url = FuzzScratch.write(input, as: "quantized.safetensors")
        guard let source = try? SafetensorsWeightSource(file: url),
              let factory = try? QuantizedUNetKernels(source: source) else { return }
        for path in factory.layers.keys.sorted().prefix(8) {
            let spec: LayerSpec
            if path.hasSuffix("conv") {
                spec = LayerSpec(path: path, role: .concatShortcut(split: 2),
                                 geometry: .conv2d(inChannels: 4, outChannels: 3, kernelSize: 3, stride: 1, padding: 1), hasBias: false, bias: nil)
            } else {
                spec = LayerSpec(path: path, role: .crossAttentionKeyValue, geometry: .linear(inFeatures: 4, outFeatures: 3),
                                 hasBias: false, bias: nil)
            }
            guard let kernel = try? factory.kernel(for: spec, weights: source) else { continue }
            // Run what was built once: a bad table or code must surface as an error, not a trap.
            switch kernel {
            case .linear(let k): _ = try? k.forward(Tensor(shape: [1, 2, 4], values: [0, 0, 0, 0, 1, -1, 0.5, 2]))
            case .conv2d(let k): _ = try? k.forward(FeatureMap(Tensor(shape: [1, 3, 3, 4], repeating: 0.25)))
            }
        }
        _ = try? factory.finish()
    }
}
