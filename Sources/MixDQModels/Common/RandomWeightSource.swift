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
        var rng = SplitMix64(seed: seed ^ RandomWeightSource.fnv1a(key))
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
        for i in 0..<t.count { p[i] = center + halfWidth * (2 * rng.nextUnitFloat() - 1) }
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
