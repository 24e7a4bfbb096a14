import CKernels
import MixDQCompute

/// Seeded test inputs shared by the compute tests.
enum TestTensors {
    /// Uniform in [-amplitude, amplitude), from SplitMix64(seed).
    static func uniform(_ shape: [Int], seed: UInt64, amplitude: Float) -> Tensor {
        var g = SplitMix64(seed: seed)
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.data[i] = (g.nextUnitFloat() * 2 - 1) * amplitude }
        return t
    }

    /// `t` rounded to bf16 by the scalar reference (round to nearest even), widened exactly to Double.
    static func bf16Widened(_ t: Tensor) -> [Double] {
        var bits = [UInt16](repeating: 0, count: t.count)
        mdq_f32_to_bf16_ref(t.data, &bits, t.count)
        return bits.map { Double(Float(bitPattern: UInt32($0) << 16)) }
    }
}
