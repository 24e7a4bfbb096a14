import CKernels

/// Signed weight codes held at their bit width: 4-bit and 2-bit codes packed two and four to a byte
/// (the layout of `mdq_pack_s4` / `mdq_pack_s2` in mixdq_kernels.h: codes in order, two's
/// complement fields, little end first, unused bits of a final partial byte zero), 8-bit codes as
/// their s8 bytes. The same bytes are the in-memory and the on-disk form.
public struct PackedWeightCodes: Sendable {
    /// 2, 4 or 8 (8: the bytes are the s8 codes).
    public let bits: Int
    /// Number of codes.
    public let count: Int
    /// `byteCount(codes: count, bits: bits)` bytes.
    public let bytes: [UInt8]

    /// Bit widths with a packed layout.
    public static let supportedBits = [2, 4, 8]

    /// The code range of a bit width: [-2^(bits-1), 2^(bits-1) - 1].
    public static func codeRange(bits: Int) -> ClosedRange<Int> {
        let half = 1 << (min(max(bits, 1), 8) - 1)
        return -half...(half - 1)
    }

    /// Bytes that hold `codes` codes of `bits` bits: ceil(codes * bits / 8). Never traps: the product
    /// is formed as whole bytes per 8 codes plus the remainder; 0 for a negative count or for bits
    /// outside 1...8.
    public static func byteCount(codes: Int, bits: Int) -> Int {
        guard codes >= 0, (1...8).contains(bits) else { return 0 }
        return codes / 8 * bits + (codes % 8 * bits + 7) / 8
    }

    /// Packs `codes`; throws, naming `name`, for a bit width without a layout or the first code
    /// outside the width's range.
    public init(codes: [Int8], bits: Int, name: String) throws {
        try Self.checkBits(bits, name: name)
        let range = Self.codeRange(bits: bits)
        if let bad = codes.firstIndex(where: { !range.contains(Int($0)) }) {
            throw Int8KernelError(layer: name, "weight code \(codes[bad]) at index \(bad) is outside the \(bits)-bit range \(range.lowerBound)...\(range.upperBound)")
        }
        self.bits = bits
        count = codes.count
        let n = Self.byteCount(codes: codes.count, bits: bits)
        switch bits {
        case 8: bytes = codes.map { UInt8(bitPattern: $0) }
        default:
            bytes = [UInt8](unsafeUninitializedCapacity: n) { out, initialized in
                codes.withUnsafeBufferPointer { c in
                    guard let src = c.baseAddress, let dst = out.baseAddress else { return }
                    if bits == 4 { mdq_pack_s4(src, dst, c.count) } else { mdq_pack_s2(src, dst, c.count) }
                }
                initialized = n
            }
        }
    }

    /// Adopts packed bytes read from a file; throws, naming `name`, when the bit width has no layout,
    /// the count is negative, the byte count is not `byteCount(codes: count, bits: bits)` (truncated or
    /// too long), or the unused bits of a final partial byte are not zero.
    public init(bytes: [UInt8], bits: Int, count: Int, name: String) throws {
        try Self.checkBits(bits, name: name)
        guard count >= 0 else { throw Int8KernelError(layer: name, "negative code count \(count)") }
        let expected = Self.byteCount(codes: count, bits: bits)
        if bytes.count < expected {
            throw Int8KernelError(layer: name, "packed \(bits)-bit weight codes truncated: \(bytes.count) bytes, expected \(expected) for \(count) codes")
        }
        if bytes.count > expected {
            throw Int8KernelError(layer: name, "packed \(bits)-bit weight codes too long: \(bytes.count) bytes, expected \(expected) for \(count) codes")
        }
        let usedBits = count * bits % 8  // bits of the last byte that hold codes (0: it is full)
        if usedBits != 0, let last = bytes.last, last >> UInt8(usedBits) != 0 {
            throw Int8KernelError(layer: name, "packed \(bits)-bit weight codes: unused bits of the last byte are not zero (0x\(String(last, radix: 16)))")
        }
        self.bits = bits
        self.count = count
        self.bytes = bytes
    }

    /// The s8 codes.
    public func unpacked() -> [Int8] {
        [Int8](unsafeUninitializedCapacity: count) { out, initialized in
            if let base = out.baseAddress { unpack(into: base) }
            initialized = count
        }
    }

    /// Writes the `count` s8 codes to `into` (SIMD unpack for 4 and 2 bits).
    public func unpack(into codes: UnsafeMutablePointer<Int8>) {
        bytes.withUnsafeBufferPointer { b in
            guard let src = b.baseAddress else { return }
            switch bits {
            case 4: mdq_unpack_s4(src, codes, count)
            case 2: mdq_unpack_s2(src, codes, count)
            default: UnsafeMutableRawPointer(codes).copyMemory(from: src, byteCount: count)
            }
        }
    }

    private static func checkBits(_ bits: Int, name: String) throws {
        guard supportedBits.contains(bits) else {
            throw Int8KernelError(layer: name, "weight bit width \(bits) has no packed layout (supported: 2, 4, 8)")
        }
    }
}
