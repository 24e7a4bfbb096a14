import CKernels
import MixDQCompute
import XCTest

/// Packed 4-bit and 2-bit weight codes: the scalar codec against bytes worked out here bit by bit,
/// every unpack variant this CPU has bit-exact against `_ref` on awkward lengths and unaligned
/// pointers, and `PackedWeightCodes` round trips and errors.
final class PackedWeightCodesTests: XCTestCase {
    typealias RNG = KernelTests.SplitMix64
    static let lengths = [0, 1, 2, 3, 4, 5, 7, 31, 32, 33, 63, 64, 65, 127, 128, 129, 191, 255, 256, 1001, 4099]

    /// Independent expectation: field i of width `bits` at bit offset i * bits, little end first.
    func expectedBytes(_ codes: [Int], bits: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (codes.count * bits + 7) / 8)
        for (i, c) in codes.enumerated() {
            let field = UInt8(c & ((1 << bits) - 1))  // two's complement in `bits` bits
            out[i * bits / 8] |= field << UInt8(i * bits % 8)
        }
        return out
    }

    func randomCodes(_ n: Int, bits: Int, _ rng: inout RNG) -> [Int8] {
        let range = PackedWeightCodes.codeRange(bits: bits)
        return (0..<n).map { _ in Int8(range.lowerBound + Int(rng.next() % UInt64(range.count))) }
    }

    func pack(_ codes: [Int8], bits: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: PackedWeightCodes.byteCount(codes: codes.count, bits: bits))
        if bits == 4 { mdq_pack_s4_ref(codes, &out, codes.count) } else { mdq_pack_s2_ref(codes, &out, codes.count) }
        return out
    }

    // MARK: - the scalar codec

    func testKnownValues() {
        // -8 = 0b1000 low, 7 = 0b0111 high -> 0x78; 0 low, -1 = 0b1111 high -> 0xF0; 3 alone -> 0x03.
        XCTAssertEqual(pack([-8, 7, 0, -1, 3], bits: 4), [0x78, 0xF0, 0x03])
        // -2 = 0b10, 1 = 0b01, 0, -1 = 0b11 -> 0b11_00_01_10 = 0xC6; then 1 alone -> 0x01.
        XCTAssertEqual(pack([-2, 1, 0, -1, 1], bits: 2), [0xC6, 0x01])
        var four = [Int8](repeating: 99, count: 5), two = [Int8](repeating: 99, count: 5)
        mdq_unpack_s4_ref([0x78, 0xF0, 0x03], &four, 5)
        mdq_unpack_s2_ref([0xC6, 0x01], &two, 5)
        XCTAssertEqual(four, [-8, 7, 0, -1, 3])
        XCTAssertEqual(two, [-2, 1, 0, -1, 1])
    }

    func testReferencePackMatchesBitTwiddlingOnEveryCode() {
        var rng = RNG(seed: 301)
        for bits in [4, 2] {
            // Every code at every position within a byte, then random runs of every length.
            let range = PackedWeightCodes.codeRange(bits: bits)
            let all = range.flatMap { c in [Int](repeating: c, count: 8 / bits) } + Array(range)
            XCTAssertEqual(pack(all.map { Int8($0) }, bits: bits), expectedBytes(all, bits: bits), "\(bits)-bit, every code")
            for n in Self.lengths {
                let codes = randomCodes(n, bits: bits, &rng)
                XCTAssertEqual(pack(codes, bits: bits), expectedBytes(codes.map { Int($0) }, bits: bits), "\(bits)-bit n=\(n)")
            }
        }
    }

    // MARK: - SIMD unpack against the reference

    func testUnpackVariantsBitExactOnLengthsAndUnalignedPointers() {
        var rng = RNG(seed: 302)
        for bits in [4, 2] {
            for n in Self.lengths {
                // Random bytes (not only packed codes): any byte decodes, and the variants must agree on all.
                let byteCount = PackedWeightCodes.byteCount(codes: n, bits: bits)
                for offset in [0, 1, 3] {
                    let storage = (0..<(byteCount + offset)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    var want = [Int8](repeating: 0, count: n + 4)
                    storage.withUnsafeBufferPointer { s in
                        want.withUnsafeMutableBufferPointer { w in
                            // Empty storage (n = 0) has no base address; the C side then reads nothing.
                            let src = s.baseAddress.map { $0 + offset }
                            if bits == 4 { mdq_unpack_s4_ref(src, w.baseAddress!, n) } else { mdq_unpack_s2_ref(src, w.baseAddress!, n) }
                        }
                    }
                    forEachISA { isa in
                        // Output at an odd address too; sentinels after the end must survive.
                        var got = [Int8](repeating: 111, count: n + 4 + offset)
                        storage.withUnsafeBufferPointer { s in
                            got.withUnsafeMutableBufferPointer { g in
                                let src = s.baseAddress.map { $0 + offset }
                                if bits == 4 { mdq_unpack_s4(src, g.baseAddress! + offset, n) } else { mdq_unpack_s2(src, g.baseAddress! + offset, n) }
                            }
                        }
                        XCTAssertEqual(Array(got[offset..<(offset + n)]), Array(want[0..<n]), "\(isa) \(bits)-bit n=\(n) offset \(offset)")
                        XCTAssertEqual(Array(got[(offset + n)...]), [Int8](repeating: 111, count: 4), "\(isa) wrote past n=\(n)")
                        XCTAssertEqual(Array(got[..<offset]), [Int8](repeating: 111, count: offset), "\(isa) wrote before the start")
                    }
                }
            }
        }
    }

    // MARK: - PackedWeightCodes

    func testRoundTripsOnEveryISA() throws {
        var rng = RNG(seed: 303)
        for bits in [8, 4, 2] {
            for n in Self.lengths {
                let codes = randomCodes(n, bits: bits, &rng)
                let packed = try PackedWeightCodes(codes: codes, bits: bits, name: "w")
                XCTAssertEqual(packed.count, n)
                XCTAssertEqual(packed.bytes.count, (n * bits + 7) / 8)
                if bits < 8 { XCTAssertEqual(packed.bytes, expectedBytes(codes.map { Int($0) }, bits: bits)) }
                forEachISA { isa in XCTAssertEqual(packed.unpacked(), codes, "\(isa) \(bits)-bit n=\(n)") }
                let reread = try PackedWeightCodes(bytes: packed.bytes, bits: bits, count: n, name: "w")
                XCTAssertEqual(reread.unpacked(), codes)
            }
        }
    }

    func testByteCount() {
        XCTAssertEqual(PackedWeightCodes.byteCount(codes: 0, bits: 4), 0)
        XCTAssertEqual(PackedWeightCodes.byteCount(codes: 5, bits: 4), 3)
        XCTAssertEqual(PackedWeightCodes.byteCount(codes: 5, bits: 2), 2)
        XCTAssertEqual(PackedWeightCodes.byteCount(codes: 8, bits: 2), 2)
        XCTAssertEqual(PackedWeightCodes.byteCount(codes: 9, bits: 8), 9)
        // No overflow where codes * bits would exceed Int.max.
        XCTAssertEqual(PackedWeightCodes.byteCount(codes: Int.max, bits: 4), Int.max / 2 + 1)
        XCTAssertEqual(PackedWeightCodes.byteCount(codes: Int.max, bits: 8), Int.max)
        XCTAssertEqual(PackedWeightCodes.byteCount(codes: -1, bits: 4), 0)
        XCTAssertEqual(PackedWeightCodes.byteCount(codes: 10, bits: 9), 0)
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return error.localizedDescription }
        XCTFail("no error thrown")
        return ""
    }

    func testOutOfRangeCodeNamesLayerIndexValueAndRange() {
        let four = message { _ = try PackedWeightCodes(codes: [0, 7, -8, 8, -9], bits: 4, name: "up.0.conv") }
        XCTAssertTrue(four.contains("up.0.conv") && four.contains("index 3") && four.contains("code 8") && four.contains("-8...7"), four)
        let two = message { _ = try PackedWeightCodes(codes: [1, -2, -3], bits: 2, name: "mid.attn") }
        XCTAssertTrue(two.contains("mid.attn") && two.contains("index 2") && two.contains("-3") && two.contains("-2...1"), two)
    }

    func testBadBitWidthThrows() {
        for bits in [0, 1, 3, 5, 16, -4] {
            let a = message { _ = try PackedWeightCodes(codes: [0], bits: bits, name: "layer.a") }
            XCTAssertTrue(a.contains("layer.a") && a.contains("bit width \(bits)"), a)
            let b = message { _ = try PackedWeightCodes(bytes: [0], bits: bits, count: 1, name: "layer.b") }
            XCTAssertTrue(b.contains("layer.b") && b.contains("bit width \(bits)"), b)
        }
    }

    func testTruncatedAndLongByteArraysNameLayerAndSizes() {
        let short = message { _ = try PackedWeightCodes(bytes: [0x78, 0xF0], bits: 4, count: 5, name: "down.1.proj") }
        XCTAssertTrue(short.contains("down.1.proj") && short.contains("truncated") && short.contains("2 bytes") && short.contains("expected 3"), short)
        let long = message { _ = try PackedWeightCodes(bytes: [0xC6, 0x01, 0x00], bits: 2, count: 5, name: "down.2.proj") }
        XCTAssertTrue(long.contains("down.2.proj") && long.contains("too long") && long.contains("3 bytes") && long.contains("expected 2"), long)
        let eight = message { _ = try PackedWeightCodes(bytes: [1, 2], bits: 8, count: 3, name: "s8") }
        XCTAssertTrue(eight.contains("truncated") && eight.contains("expected 3"), eight)
        let negative = message { _ = try PackedWeightCodes(bytes: [], bits: 4, count: -1, name: "neg") }
        XCTAssertTrue(negative.contains("neg") && negative.contains("-1"), negative)
    }

    func testNonZeroUnusedBitsOfLastByteThrow() throws {
        // 5 four-bit codes: the high nibble of byte 2 is unused; 5 two-bit codes: bits 2...7 of byte 1.
        let four = message { _ = try PackedWeightCodes(bytes: [0x78, 0xF0, 0x13], bits: 4, count: 5, name: "tail4") }
        XCTAssertTrue(four.contains("tail4") && four.contains("unused bits"), four)
        let two = message { _ = try PackedWeightCodes(bytes: [0xC6, 0x05], bits: 2, count: 5, name: "tail2") }
        XCTAssertTrue(two.contains("tail2") && two.contains("unused bits"), two)
        // A full last byte has no unused bits.
        XCTAssertEqual(try PackedWeightCodes(bytes: [0xC6, 0xFF], bits: 2, count: 8, name: "full").unpacked(), [-2, 1, 0, -1, -1, -1, -1, -1])
    }
}
