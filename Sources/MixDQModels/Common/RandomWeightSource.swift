import MixDQCompute

/// Seeded random weights for any model, so full-size models can be built and benchmarked
/// without a checkpoint (none can be downloaded here).
///
/// Each tensor's values depend only on the seed and its key, not on load order. Matrices and
/// kernels are uniform with std 1/sqrt(fan_in) (activations stay O(1) through deep stacks);
/// 1-D norm weights are near 1 and biases small, all non-trivial.
public final class RandomWeightSource: WeightSource {
    public let seed: UInt64
    public private(set) var generatedParameters = 0
    public init(seed: UInt64) { self.seed = seed }

    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        var state = seed ^ RandomWeightSource.fnv1a(key)
        let fanIn = shape.count >= 2 ? shape.dropFirst().reduce(1, *) : 1
        let (center, halfWidth): (Float, Float)
        if shape.count >= 2 {
            (center, halfWidth) = (0, Float(3.0 / Double(fanIn)).squareRoot())
        } else if key.hasSuffix(".bias") {
            (center, halfWidth) = (0, 0.05)
        } else {
            (center, halfWidth) = (1, 0.2)
        }
        let p = t.data
        for i in 0..<t.count {
            // SplitMix64: fast, good enough to fill weights.
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let u = Float(z >> 40) * (1.0 / 16_777_216.0)     // [0, 1)
            p[i] = center + halfWidth * (2 * u - 1)
        }
        generatedParameters += t.count
        return t
    }

    public func contains(_ key: String) -> Bool { true }
    public func finish() throws {}

    public static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
