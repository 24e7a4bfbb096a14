import Foundation
import MixDQCompute

/// Signal-to-quantization-noise ratio of a whole output batch against its reference, in dB:
/// `10·log10(Σ y² / Σ (ŷ − y)²)`, accumulated in Double in element order (mixdq-method.md §6.3).
public enum SQNR {
    /// +infinity when the two are equal.
    public static func decibels(_ output: Tensor, reference: Tensor) throws -> Double {
        guard output.shape == reference.shape else {
            throw SensitivityError("SQNR: the UNet output has shape \(output.shape), the reference outputs \(reference.shape)")
        }
        var signal = 0.0, noise = 0.0
        for i in 0..<output.count {
            let y = Double(reference.data[i]), d = Double(output.data[i]) - y
            signal += y * y
            noise += d * d
        }
        return 10 * log10(signal / noise)
    }
}
