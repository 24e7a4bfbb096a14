/// The 32-bit Mersenne Twister exactly as `at::mt19937` (PyTorch's CPU engine) runs it.
///
/// PyTorch seeds with the low 32 bits of the 64-bit seed through the standard
/// `1812433253` initialisation and returns tempered 32-bit words; `random64()` joins two
/// consecutive words, the first as the high half.
public struct MT19937 {
    static let n = 624
    static let m = 397
    static let matrixA: UInt32 = 0x9908_B0DF
    static let upperMask: UInt32 = 0x8000_0000
    static let lowerMask: UInt32 = 0x7FFF_FFFF

    private var state: [UInt32]
    private var index: Int

    public init(seed: UInt64) {
        var s = [UInt32](repeating: 0, count: MT19937.n)
        s[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<MT19937.n {
            s[j] = 1_812_433_253 &* (s[j - 1] ^ (s[j - 1] >> 30)) &+ UInt32(j)
        }
        state = s
        index = MT19937.n
    }

    /// Regenerates all 624 words at once, the reference "twist".
    private mutating func twist() {
        let n = MT19937.n, m = MT19937.m
        state.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                let y = (s[i] & MT19937.upperMask) | (s[(i + 1) % n] & MT19937.lowerMask)
                var next = s[(i + m) % n] ^ (y >> 1)
                if y & 1 != 0 { next ^= MT19937.matrixA }
                s[i] = next
            }
        }
        index = 0
    }

    public mutating func next() -> UInt32 {
        if index >= MT19937.n { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }
}
