import CKernels
import Foundation
import XCTest

/// The INT8 C kernels: every SIMD variant this CPU has, pinned with `mdq_isa_force`, bit-exact
/// against its scalar `_ref` on awkward lengths; the references themselves against values worked
/// out here (and the integer GEMM / convolution against independent Swift loops).
final class Int8KernelTests: XCTestCase {
    static let lengths = [0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 255, 257, 1000]

    func quantize(_ x: [Float], _ delta: Float, _ zp: Float, qmax: Float = 255, ref: Bool = false) -> [UInt8] {
        var q = [UInt8](repeating: 0xAA, count: x.count)
        if ref { mdq_quantize_u8_ref(x, &q, x.count, delta, zp, qmax) } else { mdq_quantize_u8(x, &q, x.count, delta, zp, qmax) }
        return q
    }

    // MARK: - quantize

    func testQuantizeKnownValues() {
        // delta 0.5, z 10: 1.25 / 0.5 = 2.5 -> 2 (half to even) -> 12; 1.75 -> 3.5 -> 4 -> 14;
        // -3 -> -6 -> 4; -100 clamps to 0; 1000 clamps to 255; NaN -> 0; +inf -> 255; -inf -> 0.
        let x: [Float] = [1.25, 1.75, -3, -100, 1000, .nan, .infinity, -.infinity, 0, -0.25]
        let want: [UInt8] = [12, 14, 4, 0, 255, 0, 255, 0, 10, 10]
        forEachISA { isa in XCTAssertEqual(quantize(x, 0.5, 10), want, isa) }
        XCTAssertEqual(quantize(x, 0.5, 10, ref: true), want)
    }

    /// MixDQ's 4-bit activations: codes clamp to 15 (z = 3, Δ 0.5: 1.25 -> 2 + 3 = 5, 100 -> 15, -100 -> 0).
    func testQuantizeFourBitKnownValues() {
        let x: [Float] = [1.25, 100, -100, 5.9, .nan, -1.5]
        let want: [UInt8] = [5, 15, 0, 15, 0, 0]
        forEachISA { isa in XCTAssertEqual(quantize(x, 0.5, 3, qmax: 15), want, isa) }
        XCTAssertEqual(quantize(x, 0.5, 3, qmax: 15, ref: true), want)
    }

    func testQuantizeVariantsMatchReferenceAndFakeQuant() {
        var rng = KernelTests.SplitMix64(seed: 81)
        for (delta, zp, qmax) in [(Float(0.0173), Float(0), Float(255)), (0.31, 128, 255), (2.5e-4, 255, 255), (7.0, 37, 255),
                                  (0.21, 0, 15), (0.05, 15, 15), (1.3, 7, 15), (0.4, 2, 3)] {
            for n in Self.lengths {
                // Values spread over and beyond the code range, plus exact ties (k + 0.5) * delta.
                var x = (0..<n).map { _ in Float(rng.uniform(-400, 400)) * delta }
                for i in stride(from: 0, to: n, by: 5) { x[i] = (Float(Int(rng.next() % 300)) - 150 + 0.5) * delta }
                let want = quantize(x, delta, zp, qmax: qmax, ref: true)
                forEachISA { isa in XCTAssertEqual(quantize(x, delta, zp, qmax: qmax), want, "\(isa) n=\(n) delta=\(delta) z=\(zp) qmax=\(qmax)") }
                // The codes are those fake quant implies: (q - z) * delta is its output, bit for bit.
                var fq = [Float](repeating: .nan, count: n)
                mdq_fake_quant_tensor_ref(x, &fq, n, delta, zp, 0, qmax)
                for i in 0..<n where ((Float(want[i]) - zp) * delta).bitPattern != fq[i].bitPattern {
                    XCTFail("code \(want[i]) of \(x[i]) is not fake quant's \(fq[i]) (delta \(delta), z \(zp))")
                    break
                }
            }
        }
    }

    // MARK: - dequantization epilogue

    func testDequantKnownValue() {
        // (1000 - 3 * 100) * 0.5 + 1 = 351; without bias 350. (-7 - 255 * -2) * 0.25 = 125.75.
        let acc: [Int32] = [1000, -7], wsum: [Int32] = [100, -2]
        var y = [Float](repeating: 0, count: 2)
        let scale: [Float] = [0.5, 0.25], bias: [Float] = [1, -1]
        mdq_dequant_s32_rows_ref(acc, &y, 1, 1, 3, wsum, scale, bias, nil)
        XCTAssertEqual(y[0], 351)
        mdq_dequant_s32_rows_ref(acc, &y, 1, 1, 3, wsum, scale, nil, nil)
        XCTAssertEqual(y[0], 350)
        mdq_dequant_s32_rows_ref(Array(acc[1...]), &y, 1, 1, 255, Array(wsum[1...]), Array(scale[1...]), nil, nil)
        XCTAssertEqual(y[0], 125.75)
    }

    func testDequantVariantsBitExact() {
        var rng = KernelTests.SplitMix64(seed: 82)
        for rows in [1, 3] {
            for n in Self.lengths where n > 0 {
                let acc = (0..<(rows * n)).map { _ in Int32(truncatingIfNeeded: rng.next()) >> Int32(rng.next() % 24) }
                let wsum = (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next() % 200_001) - 100_000 }
                // Per-channel scales spanning 1e-6 .. 1e2 (products 1e-9 .. 1e0 with an activation scale).
                let scale = (0..<n).map { _ in Float(pow(10.0, -9.0 + 9.0 * rng.unit())) }
                let bias = (0..<n).map { _ in rng.mixed() }
                let residual = (0..<(rows * n)).map { _ in rng.mixed() }
                for zp: Int32 in [0, 128, 255] {
                    for withBias in [false, true] {
                        var want = [Float](repeating: .nan, count: rows * n)
                        mdq_dequant_s32_rows_ref(acc, &want, rows, n, zp, wsum, scale, withBias ? bias : nil, nil)
                        // The fused residual add is the unfused one: ((acc - z·Σw)·s + b) + r, bit for bit.
                        var fusedWant = [Float](repeating: .nan, count: rows * n)
                        mdq_dequant_s32_rows_ref(acc, &fusedWant, rows, n, zp, wsum, scale, withBias ? bias : nil, residual)
                        XCTAssertEqual(fusedWant.map(\.bitPattern), zip(want, residual).map { ($0 + $1).bitPattern }, "reference fused add")
                        forEachISA { isa in
                            var got = [Float](repeating: .nan, count: rows * n)
                            mdq_dequant_s32_rows(acc, &got, rows, n, zp, wsum, scale, withBias ? bias : nil, nil)
                            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(isa) rows \(rows) n \(n) z \(zp) bias \(withBias)")
                            var fused = [Float](repeating: .nan, count: rows * n)
                            mdq_dequant_s32_rows(acc, &fused, rows, n, zp, wsum, scale, withBias ? bias : nil, residual)
                            XCTAssertEqual(fused.map(\.bitPattern), fusedWant.map(\.bitPattern), "\(isa) fused residual rows \(rows) n \(n)")
                            // In place: the products in the output's own storage, as the layer kernels run it.
                            let inPlace = dequantInPlace(acc, rows: rows, n: n, zp: zp, wsum: wsum, scale: scale, bias: withBias ? bias : nil)
                            XCTAssertEqual(inPlace.map(\.bitPattern), want.map(\.bitPattern), "in place \(isa) rows \(rows) n \(n) z \(zp)")
                        }
                    }
                }
            }
        }
    }

    func dequantInPlace(_ acc: [Int32], rows: Int, n: Int, zp: Int32, wsum: [Int32], scale: [Float], bias: [Float]?) -> [Float] {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: acc.count * 4, alignment: 64)
        defer { buffer.deallocate() }
        acc.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        mdq_dequant_s32_rows(UnsafePointer<Int32>(OpaquePointer(buffer)), UnsafeMutablePointer<Float>(OpaquePointer(buffer)), rows, n, zp,
                             wsum, scale, bias, nil)
        return Array(UnsafeBufferPointer(start: UnsafePointer<Float>(OpaquePointer(buffer)), count: acc.count))
    }

    // MARK: - 7-bit split

    func testSplitAndCombineRoundTrip() {
        var rng = KernelTests.SplitMix64(seed: 83)
        for n in Self.lengths {
            let q = (0..<n).map { i in i < 256 ? UInt8(255 - i) : UInt8(truncatingIfNeeded: rng.next()) }
            var hiRef = [UInt8](repeating: 9, count: n), loRef = hiRef
            mdq_split_u8_hi_lo_ref(q, &hiRef, &loRef, n)
            for i in 0..<n {
                XCTAssertTrue(hiRef[i] <= 1 && loRef[i] <= 127 && Int(hiRef[i]) * 128 + Int(loRef[i]) == Int(q[i]), "q=\(q[i])")
            }
            let hiAcc = (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next()) >> 8 }
            let loAcc = (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next()) >> 8 }
            var accRef = [Int32](repeating: 0, count: n)
            mdq_combine_hi_lo_s32_ref(hiAcc, loAcc, &accRef, n)
            for i in 0..<n { XCTAssertEqual(accRef[i], hiAcc[i] &* 128 &+ loAcc[i]) }
            forEachISA { isa in
                var hi = [UInt8](repeating: 9, count: n), lo = hi
                mdq_split_u8_hi_lo(q, &hi, &lo, n)
                XCTAssertEqual(hi, hiRef, "\(isa) n=\(n)")
                XCTAssertEqual(lo, loRef, "\(isa) n=\(n)")
                var acc = [Int32](repeating: 0, count: n)
                mdq_combine_hi_lo_s32(hiAcc, loAcc, &acc, n)
                XCTAssertEqual(acc, accRef, "\(isa) n=\(n)")
                var inPlace = loAcc  // acc aliasing lo, as the split paths run it
                inPlace.withUnsafeMutableBufferPointer { mdq_combine_hi_lo_s32(hiAcc, $0.baseAddress, $0.baseAddress, n) }
                XCTAssertEqual(inPlace, accRef, "in place \(isa) n=\(n)")
            }
        }
        XCTAssertEqual(quantizeSplitExample(), [1, 72])  // 200 = 128 + 72
    }

    private func quantizeSplitExample() -> [UInt8] {
        var hi: [UInt8] = [0], lo: [UInt8] = [0]
        mdq_split_u8_hi_lo([200], &hi, &lo, 1)
        return [hi[0], lo[0]]
    }

    // MARK: - integer GEMM and convolution references

    func testGemmReferenceKnownValues() {
        // a = [[255, 1, 0], [2, 3, 4]], w = [[127, -128, 5], [-1, 0, 1]]:
        // c00 = 255*127 - 128 = 32257, c01 = -255, c10 = 254 - 384 + 20 = -110, c11 = -2 + 4 = 2.
        let a: [UInt8] = [255, 1, 0, 2, 3, 4], w: [Int8] = [127, -128, 5, -1, 0, 1]
        var c = [Int32](repeating: 0, count: 4)
        mdq_gemm_u8s8s32_ref(2, 2, 3, a, w, &c)
        XCTAssertEqual(c, [32257, -255, -110, 2])
    }

    /// The reference convolution against a Swift loop that, instead of reading the zero-point code
    /// in the padding, corrects each output by z times the weights of its in-bounds taps only (the
    /// original's `conv_act_zero_point_propagate`): both equal the real-domain zero padding.
    func testConvReferenceAgainstInBoundsCorrection() {
        var rng = KernelTests.SplitMix64(seed: 84)
        for (n, h, w, c, o, k, s, p) in [(1, 5, 4, 3, 2, 3, 1, 1), (2, 6, 7, 2, 3, 3, 2, 1), (1, 3, 3, 4, 2, 1, 2, 0),
                                         (1, 1, 2, 2, 2, 3, 1, 1), (1, 5, 5, 1, 1, 3, 1, 2)] {
            let x = (0..<(n * h * w * c)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let wt = (0..<(o * c * k * k)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            for z in [0, 128, 255] {
                var y = [Int32](repeating: 0, count: n * oh * ow * o)
                mdq_conv_u8s8s32_ref(x, n, h, w, c, wt, o, k, s, p, UInt8(z), &y)
                let total = (0..<o).map { oc in (0..<(c * k * k)).reduce(0) { $0 + Int(wt[oc * c * k * k + $1]) } }
                for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for oc in 0..<o {
                    var centred = 0  // Σ over in-bounds taps of (x - z) * w: the real-domain sum / (Δx Δw)
                    for ky in 0..<k { for kx in 0..<k {
                        let iy = oy * s + ky - p, ix = ox * s + kx - p
                        guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                        for ic in 0..<c {
                            centred += (Int(x[((b * h + iy) * w + ix) * c + ic]) - z) * Int(wt[((oc * c + ic) * k + ky) * k + kx])
                        }
                    } }
                    let got = Int(y[((b * oh + oy) * ow + ox) * o + oc]) - z * total[oc]
                    XCTAssertEqual(got, centred, "n\(n) h\(h) w\(w) c\(c) o\(o) k\(k) s\(s) p\(p) z\(z) at \(b),\(oy),\(ox),\(oc)")
                } } } }
            }
        }
    }
}
