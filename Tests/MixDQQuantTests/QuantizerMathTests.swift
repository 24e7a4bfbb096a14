import Foundation
import XCTest
import MixDQCompute
import MixDQQuant

/// Quantizer math against hand-computed cases (mixdq-method.md §3.3-§3.5).
final class QuantizerMathTests: XCTestCase {
    func fq(_ xs: [Float], delta: Float, zp: Float, bits: Int, sym: Bool) -> [Float] {
        var out = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { y in
                UniformQuantizer.fakeQuantize(x.baseAddress!, y.baseAddress!, count: xs.count, delta: delta, zeroPoint: zp,
                                              bits: bits, symmetric: sym)
            }
        }
        return out
    }

    func testTwoBitSymmetricGridIsMinusTwoToOne() {
        XCTAssertEqual(UniformQuantizer.range(bits: 2, symmetric: true).qmin, -2)
        XCTAssertEqual(UniformQuantizer.range(bits: 2, symmetric: true).qmax, 1)
        // Δ = 0.5: grid {-1.0, -0.5, 0, 0.5}; ties round to even (0.75/0.5 = 1.5 -> 2 -> clamp 1).
        XCTAssertEqual(fq([-3, -1.1, -0.8, -0.25, 0.25, 0.3, 0.75, 9], delta: 0.5, zp: 0, bits: 2, sym: true),
                       [-1.0, -1.0, -1.0, -0.0, 0.0, 0.5, 0.5, 0.5])
    }

    func testRoundHalfToEven() {
        XCTAssertEqual(fq([0.5, 1.5, 2.5, -0.5, -2.5], delta: 1, zp: 0, bits: 8, sym: true), [0, 2, 2, -0, -2])
    }

    func testWeightParametersForAllBitWidthsAtOnce() {
        // Two output channels: absmax 1.27 and 0.5.
        let w = Tensor(shape: [2, 3], values: [0.3, -1.27, 1.0, 0.5, 0.25, -0.125])
        for (bits, levels) in [(2, Float(1)), (4, 7), (8, 127)] {
            let p = WeightQuantization.parameters(w, columns: 0..<3, rowLength: 3, bits: bits, symmetric: true)
            XCTAssertEqual(p.delta, [Float(1.27) / levels, Float(0.5) / levels], "bits \(bits)")
            XCTAssertEqual(p.zeroPoint, [0, 0])
        }
        // Asymmetric (sdxl.yaml): Δ = (max - min) / (2^b - 1), z = round(-min / Δ).
        let a = WeightQuantization.parameters(w, columns: 0..<3, rowLength: 3, bits: 4, symmetric: false)
        XCTAssertEqual(a.delta[0], Float(1.0 + 1.27) / 15)
        XCTAssertEqual(a.zeroPoint[0], (Float(1.27) / (Float(1.0 + 1.27) / 15)).rounded(.toNearestOrEven))
    }

    func testChannelOfZerosGetsMinimumDeltaAndStaysZero() {
        let w = Tensor(shape: [2, 2], values: [0, 0, 1, -1])
        let p = WeightQuantization.parameters(w, columns: 0..<2, rowLength: 2, bits: 8, symmetric: true)
        XCTAssertEqual(p.delta, [1e-6, Float(1) / 127])
        let out = Tensor(zeros: [2, 2])
        WeightQuantization.fakeQuantize(w, into: out, columns: 0..<2, rowLength: 2, parameters: p, bits: 8, symmetric: true)
        XCTAssertEqual(out.scalars, [0, 0, 1, -1])
    }

    func testNegativeOnlyActivationsIncludeZero() {
        let (delta, zp) = UniformQuantizer.parameters(min: -3, max: -1, bits: 8, symmetric: false)
        XCTAssertEqual(delta, Float(3) / 255)
        XCTAssertEqual(zp, 255)
        // -1 is representable; 0.5 clamps to the top of the range, which is 0.
        let y = fq([-3, -1, 0.5], delta: delta, zp: zp, bits: 8, sym: false)
        XCTAssertEqual(y[0], -3, accuracy: 1e-6)
        XCTAssertEqual(y[1], (((-1 as Float) / delta).rounded(.toNearestOrEven) + zp - zp) * delta)
        XCTAssertEqual(y[2], 0)
    }

    func testEMASequenceCleanAndCompat() {
        // The third batch is one-signed: the original widens it to [0, 4] before the EMA.
        let batches: [(Float, Float)] = [(-1, 2), (-3, 1), (0.5, 4)]
        let widened: [(Float, Float)] = [(-1, 2), (-3, 1), (0, 4)]
        let m: Float = 0.95, w: Float = 0.05   // float32(0.95), float32(1 - 0.95) as PyTorch forms them
        // Clean: one update per batch.
        let clean = ActivationObserver(bitWidths: [2, 4, 8], runningStat: true, emaCompatRepeat: false)
        var lo: Float = -1, hi: Float = 2
        for (i, b) in batches.enumerated() {
            clean.observe(min: b.0, max: b.1)
            if i > 0 { lo = lo * m + widened[i].0 * w; hi = hi * m + widened[i].1 * w }
        }
        XCTAssertEqual(clean.rangeMin, lo)
        XCTAssertEqual(clean.rangeMax, hi)
        XCTAssertEqual(clean.parameters(bits: 8).delta, (hi - lo) / 255)
        XCTAssertEqual(clean.parameters(bits: 2).delta, (hi - lo) / 3)
        // Compat: the shared range is updated once per bit width; bit k takes the (k+1)-th update.
        let compat = ActivationObserver(bitWidths: [2, 4, 8], runningStat: true, emaCompatRepeat: true)
        var state: (Float, Float)? = nil
        var expected: [Int: (Float, Float)] = [:]
        for (i, b) in batches.enumerated() {
            compat.observe(min: b.0, max: b.1)
            let x = widened[i]
            for bits in [2, 4, 8] {
                if let s = state { state = (s.0 * m + x.0 * w, s.1 * m + x.1 * w) } else { state = x }
                expected[bits] = state!
            }
        }
        for bits in [2, 4, 8] {
            let (elo, ehi) = expected[bits]!
            let delta = (ehi - elo) / Float((1 << bits) - 1)
            XCTAssertEqual(compat.parameters(bits: bits).delta, delta, "bits \(bits)")
            XCTAssertEqual(compat.parameters(bits: bits).zeroPoint, (-elo / delta).rounded(.toNearestOrEven), "bits \(bits)")
        }
        XCTAssertNotEqual(compat.parameters(bits: 8).delta, clean.parameters(bits: 8).delta)
    }

    /// A one-signed batch enters the EMA widened to contain 0 (the original's init_quant_params),
    /// not raw and widened afterwards: after [-1, 2] then [0.5, 4] the state is
    /// min = -1·0.95 + 0·0.05 = -0.95 (raw-then-widen would give -0.925).
    func testOneSignedBatchIsWidenedBeforeTheEMA() {
        let o = ActivationObserver(bitWidths: [8], runningStat: true, emaCompatRepeat: false)
        o.observe(min: -1, max: 2)
        o.observe(min: 0.5, max: 4)
        XCTAssertEqual(o.rangeMin, -0.95)
        XCTAssertEqual(o.rangeMax, Float(2) * 0.95 + Float(4) * 0.05)
        let p = ActivationObserver(bitWidths: [8], runningStat: true, emaCompatRepeat: false)
        p.observe(min: -3, max: -1)
        p.observe(min: -2, max: -0.5)
        XCTAssertEqual(p.rangeMax, 0)
        XCTAssertEqual(p.rangeMin, Float(-3) * 0.95 + Float(-2) * 0.05)
    }

    /// The observer against the original's arithmetic run in PyTorch
    /// (`scripts/reference/make_ema_fixtures.py`): every bit width's Δ and zero point after every
    /// batch, compat (repeated per-bit updates) and clean, bit for bit.
    func testMatchesOriginalArithmeticInPyTorch() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/quant/ema_reference.json")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let bits = doc["bits"] as! [Int]
        func f(_ v: Any?) -> Float { Float(bitPattern: UInt32((v as! NSNumber).uint64Value)) }
        var checked = 0
        for c in doc["cases"] as! [[String: Any]] {
            for mode in ["compat", "clean"] {
                let o = ActivationObserver(bitWidths: bits, runningStat: true, emaCompatRepeat: mode == "compat")
                for (i, step) in (c[mode] as! [[String: Any]]).enumerated() {
                    o.observe(min: f(step["min"]), max: f(step["max"]))
                    let params = step["params"] as! [String: [String: Any]]
                    for b in bits {
                        let want = params[String(b)]!
                        let got = o.parameters(bits: b)
                        let where_ = "\(c["name"]!) \(mode) batch \(i) bits \(b)"
                        XCTAssertEqual(got.delta.bitPattern, f(want["delta"]).bitPattern, "\(where_): Δ \(got.delta) vs \(f(want["delta"]))")
                        XCTAssertEqual(got.zeroPoint, f(want["zero_point"]), where_)
                        checked += 1
                    }
                }
            }
        }
        print("EMA parity with the original's PyTorch arithmetic: \(checked) (Δ, z) pairs bit-exact")
        XCTAssertGreaterThan(checked, 50)
    }

    func testRunningStatOffUsesLastBatch() {
        let o = ActivationObserver(bitWidths: [8], runningStat: false, emaCompatRepeat: false)
        o.observe(min: -1, max: 1); o.observe(min: -2, max: 5)
        XCTAssertEqual(o.rangeMin, -2); XCTAssertEqual(o.rangeMax, 5)
    }
}
