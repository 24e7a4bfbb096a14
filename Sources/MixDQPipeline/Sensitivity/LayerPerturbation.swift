import MixDQQuant

/// The original's single-layer perturbation (mixdq-method.md §6.2-6.3): every layer FP except the
/// target, which has only its weight (`weight`) or only its input activation (`act`) quantized at
/// bit width b.
///
/// Weights at b use the checkpoint's per-channel parameters for b. They are min-max of the FP
/// weight, data-independent, so they equal what the original's re-initialisation of the weight
/// quantizer at b computes. Activations at b use the checkpoint's calibrated range for b, as the
/// original does. The simulator must have quantization off everywhere on entry; it is left so.
enum LayerPerturbation {
    static func withLayer<T>(_ layer: QuantizedLayer, _ type: SensitivityType, bits: Int, _ body: () throws -> T) throws -> T {
        let saved = (layer.weightBits, layer.activationBits)
        defer {
            layer.weightEnabled = false; layer.activationEnabled = false
            layer.weightBits = saved.0; layer.activationBits = saved.1
        }
        switch type {
        case .weight: layer.weightBits = bits; layer.weightEnabled = true
        case .act: layer.activationBits = bits; layer.activationEnabled = true
        }
        return try body()
    }
}
