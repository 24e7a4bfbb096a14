import Foundation

/// SplitMix64: a tiny, fast, seedable generator for seeded random weights and benchmark inputs
/// (not torch's generator: that is `TorchGenerator`, for noise that must match diffusers).
public struct SplitMix64 {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 bits (a float's mantissa).
    @inlinable public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal (Box-Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992.0
        let u2 = Double(next() >> 11) / 9_007_199_254_740_992.0
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
