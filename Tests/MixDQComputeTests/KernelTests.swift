import CKernels
import Foundation
import XCTest

/// The C kernels (CKernels): every SIMD variant the CPU has is pinned in turn with `mdq_isa_force`
/// and held to the scalar `_ref` (bit-exact where the contract says so, tight relative bounds for the
/// transcendental ones), plus known values computed independently here.
final class KernelTests: XCTestCase {
    // MARK: - helpers

    /// SplitMix64: tiny deterministic generator for reproducible inputs.
    struct SplitMix64 {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Uniform in [0, 1).
        mutating func unit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
        mutating func uniform(_ lo: Double, _ hi: Double) -> Float { Float(lo + (hi - lo) * unit()) }
        /// Mixed magnitudes: mostly moderate values, some tiny, some large, both signs, a few zeros.
        mutating func mixed(maxMagnitude: Double = 100) -> Float {
            let k = next() % 16
            switch k {
            case 0: return 0
            case 1...3:  // log-uniform magnitude between 1e-6 and maxMagnitude
                let e = -6.0 + (log10(maxMagnitude) + 6.0) * unit()
                return Float((next() & 1 == 0 ? 1.0 : -1.0) * pow(10.0, e))
            case 4...5: return uniform(-maxMagnitude, maxMagnitude)
            default: return uniform(-8, 8)
            }
        }
        mutating func floats(_ n: Int, maxMagnitude: Double = 100) -> [Float] {
            (0..<n).map { _ in mixed(maxMagnitude: maxMagnitude) }
        }
    }

    static let lengths = [0, 1, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 255, 257, 1000]

    static func isaName(_ isa: mdq_isa) -> String {
        switch isa {
        case MDQ_ISA_AVX512: return "avx512"
        case MDQ_ISA_AVX2: return "avx2"
        default: return "scalar"
        }
    }

    /// Error statistics of `got` against `ref`; fails when an element is off by more than
    /// `rel * |ref|` (where |ref| > relFloor) or `abs` (elsewhere). NaN must meet NaN.
    @discardableResult
    func compare(_ name: String, _ got: [Float], _ ref: [Float], rel: Double, abs absTol: Double,
                 relFloor: Double = 1e-30, file: StaticString = #filePath, line: UInt = #line) -> (Double, Double) {
        XCTAssertEqual(got.count, ref.count, name, file: file, line: line)
        var maxAbs = 0.0, maxRel = 0.0, failures = 0
        for i in 0..<min(got.count, ref.count) {
            let g = Double(got[i]), r = Double(ref[i])
            if r.isNaN || g.isNaN {
                if !(r.isNaN && g.isNaN) {
                    failures += 1
                    if failures <= 5 { XCTFail("\(name)[\(i)]: got \(g), ref \(r)", file: file, line: line) }
                }
                continue
            }
            if r.isInfinite || g.isInfinite {
                if g != r {
                    failures += 1
                    if failures <= 5 { XCTFail("\(name)[\(i)]: got \(g), ref \(r)", file: file, line: line) }
                }
                continue
            }
            let e = Swift.abs(g - r)
            maxAbs = max(maxAbs, e)
            let ok: Bool
            if Swift.abs(r) > relFloor {
                let re = e / Swift.abs(r)
                maxRel = max(maxRel, re)
                ok = re <= rel
            } else {
                ok = e <= absTol
            }
            if !ok {
                failures += 1
                if failures <= 5 {
                    XCTFail("\(name)[\(i)]: got \(got[i]), ref \(ref[i]) (abs err \(e))", file: file, line: line)
                }
            }
        }
        return (maxAbs, maxRel)
    }

    func assertBitEqual(_ name: String, _ got: [Float], _ ref: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, ref.count, name, file: file, line: line)
        var failures = 0
        for i in 0..<min(got.count, ref.count) where got[i].bitPattern != ref[i].bitPattern {
            failures += 1
            if failures <= 5 { XCTFail("\(name)[\(i)]: got \(got[i]), ref \(ref[i])", file: file, line: line) }
        }
    }

    typealias Unary = (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void

    func apply(_ f: Unary, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in f(xp.baseAddress, yp.baseAddress, x.count) } }
        return y
    }

    /// Sweeps a unary kernel over the awkward lengths on every ISA against its reference.
    func sweepUnary(_ name: String, _ f: Unary, _ ref: Unary, rel: Double, abs: Double, seed: UInt64, maxMagnitude: Double = 100) {
        var rng = SplitMix64(seed: seed)
        var worst = (0.0, 0.0)
        var inputs = Self.lengths.map { rng.floats($0, maxMagnitude: maxMagnitude) }
        // specials at both ends of the 1000-long case
        inputs[inputs.count - 1].replaceSubrange(0..<8, with: [0, -0.0, 1e-30, -1e-30, 100, -100, 1e4, -1e4])
        forEachISA { isa in
            for x in inputs {
                let expect = apply(ref, x)
                let got = apply(f, x)
                let (a, r) = compare("\(name)/\(isa)/n=\(x.count)", got, expect, rel: rel, abs: abs)
                if isa != "scalar" { worst = (max(worst.0, a), max(worst.1, r)) }
            }
        }
        print("[KernelTests] \(name): SIMD vs ref max abs err \(worst.0), max rel err \(worst.1)")
    }

    // MARK: - ISA

    func testISASelection() {
        let detected = mdq_isa_detected()
        XCTAssertLessThanOrEqual(mdq_isa_active().rawValue, detected.rawValue)
        let previous = mdq_isa_active()
        mdq_isa_force(MDQ_ISA_SCALAR)
        XCTAssertEqual(mdq_isa_active(), MDQ_ISA_SCALAR)
        mdq_isa_force(mdq_isa(rawValue: 7))  // clamped to what the CPU has
        XCTAssertEqual(mdq_isa_active(), detected)
        mdq_isa_force(previous)
        print("[KernelTests] detected ISA \(Self.isaName(detected)), avx512_bf16 \(mdq_cpu_has_avx512_bf16()), avx512_vnni \(mdq_cpu_has_avx512_vnni())")
        XCTAssertTrue([0, 1].contains(mdq_cpu_has_avx512_bf16()))
        XCTAssertTrue([0, 1].contains(mdq_cpu_has_avx512_vnni()))
    }

    // MARK: - activations

    func testSiluSweep() {
        sweepUnary("silu", mdq_silu, mdq_silu_ref, rel: 1e-6, abs: 1e-7, seed: 1)
    }

    func testQuickGeluSweep() {
        sweepUnary("quick_gelu", mdq_quick_gelu, mdq_quick_gelu_ref, rel: 1e-6, abs: 1e-7, seed: 2)
    }

    func testGeluSweep() {
        sweepUnary("gelu_erf", mdq_gelu_erf, mdq_gelu_erf_ref, rel: 2e-6, abs: 1e-7, seed: 3)
    }

    /// Dense scan of GELU's whole interesting range, the far negative tail included.
    func testGeluDenseScan() {
        let n = 400_001
        let x = (0..<n).map { Float(-16.0 + 32.0 * Double($0) / Double(n - 1)) }
        let expect = apply(mdq_gelu_erf_ref, x)
        forEachISA { isa in
            let (a, r) = compare("gelu_dense/\(isa)", apply(mdq_gelu_erf, x), expect, rel: 2e-6, abs: 1e-7)
            print("[KernelTests] gelu_erf dense [-16,16] \(isa): max abs err \(a), max rel err \(r)")
        }
    }

    func testActivationKnownValues() {
        forEachISA { isa in
            let g = apply(mdq_gelu_erf, [-4, 0, 3, 1, -1, -10, 1000, -1000])
            // exact GELU: 0.5 x erfc(-x/sqrt2); gelu(-4) = -1.26684967e-4 (the naive 0.5x(1+erf) in fp32 gives -1.2672e-4)
            XCTAssertEqual(Double(g[0]), -1.266849673e-4, accuracy: 1.266849673e-4 * 1e-5, isa)
            XCTAssertEqual(g[1], 0, isa)
            XCTAssertEqual(Double(g[2]), 2.995950306, accuracy: 1e-6, isa)
            XCTAssertEqual(Double(g[3]), 0.8413447461, accuracy: 1e-7, isa)
            XCTAssertEqual(Double(g[4]), -0.1586552539, accuracy: 1e-7, isa)
            XCTAssertEqual(Double(g[5]), -7.619853e-23, accuracy: 7.62e-23 * 1e-5, isa)  // -10 * Phi(-10)
            XCTAssertEqual(g[6], 1000, isa)
            XCTAssertEqual(g[7], 0, isa)
            let s = apply(mdq_silu, [1, 0, -1, 100, -100, 20])
            XCTAssertEqual(Double(s[0]), 0.7310585786, accuracy: 1e-7, isa)
            XCTAssertEqual(s[1], 0, isa)
            XCTAssertEqual(Double(s[2]), -0.2689414214, accuracy: 1e-7, isa)
            XCTAssertEqual(s[3], 100, isa)
            XCTAssertFalse(s[4].isNaN, isa)
            XCTAssertEqual(Double(s[4]), -100 * exp(-100.0), accuracy: 1e-43, isa)  // -3.7e-42 (subnormal) or 0
            XCTAssertEqual(Double(s[5]), 20 / (1 + exp(-20.0)), accuracy: 2e-6, isa)
            let q = apply(mdq_quick_gelu, [1, -1, 0, 200, -200])
            XCTAssertEqual(Double(q[0]), 1 / (1 + exp(-1.702)), accuracy: 1e-7, isa)
            XCTAssertEqual(Double(q[1]), -1 / (1 + exp(1.702)), accuracy: 1e-7, isa)
            XCTAssertEqual(q[2], 0, isa)
            XCTAssertEqual(q[3], 200, isa)
            XCTAssertFalse(q[4].isNaN, isa)
            XCTAssertEqual(q[4], 0, isa)
        }
    }

    func testGegluSweep() {
        var rng = SplitMix64(seed: 4)
        var worst = 0.0
        for inner in Self.lengths {
            for rows in [1, 3] {
                let proj = rng.floats(rows * 2 * inner, maxMagnitude: 30)
                func run(_ f: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int) -> Void) -> [Float] {
                    var out = [Float](repeating: .nan, count: rows * inner)
                    proj.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { o in f(p.baseAddress, o.baseAddress, rows, inner) } }
                    return out
                }
                let expect = run(mdq_geglu_ref)
                // the definition: a * gelu(gate)
                for r in 0..<rows {
                    let gate = Array(proj[(r * 2 * inner + inner)..<(r * 2 + 2) * inner])
                    let gl = apply(mdq_gelu_erf_ref, gate)
                    for i in 0..<inner { XCTAssertEqual(expect[r * inner + i], proj[r * 2 * inner + i] * gl[i]) }
                }
                forEachISA { isa in
                    let (_, rel) = compare("geglu/\(isa)/\(rows)x\(inner)", run(mdq_geglu), expect, rel: 3e-6, abs: 1e-7)
                    if isa != "scalar" { worst = max(worst, rel) }
                }
            }
        }
        print("[KernelTests] geglu: SIMD vs ref max rel err \(worst)")
    }

    // MARK: - softmax

    func softmax(_ f: (UnsafeMutablePointer<Float>?, Int, Int, Float) -> Void, _ x: [Float], rows: Int, cols: Int, scale: Float) -> [Float] {
        var y = x
        y.withUnsafeMutableBufferPointer { f($0.baseAddress, rows, cols, scale) }
        return y
    }

    func testSoftmaxSweep() {
        var rng = SplitMix64(seed: 5)
        var worst = (0.0, 0.0)
        for cols in Self.lengths {
            for scale: Float in [1, 0.125, -1.3] {
                let rows = 3
                var x = (0..<(rows * cols)).map { _ in rng.uniform(-30, 30) }
                if cols > 2 && scale > 0 {  // a masked row: -inf entries must give exact zeros
                    x[cols] = -.infinity
                    x[cols + 2] = -.infinity
                }
                let expect = softmax(mdq_softmax_rows_ref, x, rows: rows, cols: cols, scale: scale)
                forEachISA { isa in
                    let got = softmax(mdq_softmax_rows, x, rows: rows, cols: cols, scale: scale)
                    let (a, r) = compare("softmax/\(isa)/cols=\(cols)/scale=\(scale)", got, expect, rel: 1e-6, abs: 1e-12)
                    if isa != "scalar" { worst = (max(worst.0, a), max(worst.1, r)) }
                    for row in 0..<rows where cols > 0 {
                        let sum = got[(row * cols)..<((row + 1) * cols)].reduce(0.0) { $0 + Double($1) }
                        XCTAssertEqual(sum, 1, accuracy: 1e-5, "softmax row sum \(isa)")
                    }
                    if cols > 2 && scale > 0 {
                        XCTAssertEqual(got[cols].bitPattern, Float(0).bitPattern, isa)
                        XCTAssertEqual(got[cols + 2], 0, isa)
                    }
                }
            }
        }
        print("[KernelTests] softmax_rows: SIMD vs ref max abs err \(worst.0), max rel err \(worst.1)")
    }

    func testSoftmaxKnownValues() {
        forEachISA { isa in
            let y = softmax(mdq_softmax_rows, [0, 1, 2, 3, 1000, 1000], rows: 2, cols: 3, scale: 2)
            let e = [exp(0.0), exp(2.0), exp(4.0)]
            let s = e.reduce(0, +)
            for i in 0..<3 { XCTAssertEqual(Double(y[i]), e[i] / s, accuracy: 1e-7 * e[i] / s + 1e-12, isa) }
            // second row (3, 1000, 1000) * 2: the 1000s split the mass, the 3 vanishes
            XCTAssertEqual(y[3], 0, isa)
            XCTAssertEqual(y[4], 0.5, isa)
            XCTAssertEqual(y[5], 0.5, isa)
        }
    }

    // MARK: - normalisation

    func groupNorm(_ f: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int, Int, Int, Float, UnsafePointer<Float>?, UnsafePointer<Float>?, Int32) -> Void,
                   _ x: [Float], n: Int, hw: Int, c: Int, groups: Int, eps: Float, gamma: [Float]?, beta: [Float]?, silu: Bool) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        let g = gamma ?? [], b = beta ?? []
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                g.withUnsafeBufferPointer { gp in
                    b.withUnsafeBufferPointer { bp in
                        f(xp.baseAddress, yp.baseAddress, n, hw, c, groups, eps, gamma == nil ? nil : gp.baseAddress,
                          beta == nil ? nil : bp.baseAddress, silu ? 1 : 0)
                    }
                }
            }
        }
        return y
    }

    func testGroupNormSweep() {
        var rng = SplitMix64(seed: 6)
        let shapes: [(Int, Int, Int, Int)] = [  // n, hw, c, groups
            (1, 1, 4, 2), (2, 3, 6, 3), (1, 17, 32, 32), (1, 7, 320, 32), (2, 65, 64, 32), (1, 33, 33, 3),
            (1, 5, 1000, 8), (1, 64, 960, 32), (3, 2, 15, 5), (1, 257, 17, 1),
        ]
        var worst = 0.0
        for (n, hw, c, groups) in shapes {
            let x = (0..<(n * hw * c)).map { _ in 5 + 3 * rng.mixed(maxMagnitude: 10) }
            let gamma = (0..<c).map { _ in rng.uniform(-2, 2) }
            let beta = (0..<c).map { _ in rng.uniform(-1, 1) }
            for silu in [false, true] {
                for affine in [true, false] {
                    let gm = affine ? gamma : nil, bt = affine ? beta : nil
                    let expect = groupNorm(mdq_group_norm_nhwc_ref, x, n: n, hw: hw, c: c, groups: groups, eps: 1e-5, gamma: gm, beta: bt, silu: silu)
                    forEachISA { isa in
                        let got = groupNorm(mdq_group_norm_nhwc, x, n: n, hw: hw, c: c, groups: groups, eps: 1e-5, gamma: gm, beta: bt, silu: silu)
                        let name = "group_norm/\(isa)/\(n)x\(hw)x\(c)/g\(groups)/silu=\(silu)/affine=\(affine)"
                        if silu {
                            let (_, r) = compare(name, got, expect, rel: 1e-6, abs: 1e-7)
                            if isa != "scalar" { worst = max(worst, r) }
                        } else {
                            assertBitEqual(name, got, expect)  // same statistics, same fma: identical
                        }
                    }
                }
            }
        }
        print("[KernelTests] group_norm_nhwc: SIMD vs ref bit-identical without SiLU; with SiLU max rel err \(worst)")
    }

    /// 2 groups, 4 channels, hw = 2, against statistics computed here by hand.
    func testGroupNormHandComputed() {
        // pixels p0 = [1, 2, 3, 4], p1 = [5, 6, 7, 8]; group 0 = channels 0, 1; group 1 = channels 2, 3
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        let gamma: [Float] = [1, 2, 0.5, -1], beta: [Float] = [0, 1, -1, 0.5]
        let eps: Float = 1e-5
        // group 0 values {1, 2, 5, 6}: mean 3.5, variance (6.25 + 2.25 + 2.25 + 6.25) / 4 = 4.25
        // group 1 values {3, 4, 7, 8}: mean 5.5, variance 4.25
        let mean = [3.5, 5.5], variance = 4.25
        let rstd = 1 / (variance + Double(eps)).squareRoot()
        var expect = [Double](repeating: 0, count: 8), expectSilu = expect
        for p in 0..<2 {
            for ch in 0..<4 {
                let v = (Double(x[p * 4 + ch]) - mean[ch / 2]) * rstd * Double(gamma[ch]) + Double(beta[ch])
                expect[p * 4 + ch] = v
                expectSilu[p * 4 + ch] = v / (1 + exp(-v))
            }
        }
        XCTAssertEqual(expect[0], -2.5 / 4.25.squareRoot(), accuracy: 1e-5)  // sanity of the hand numbers
        forEachISA { isa in
            for silu in [false, true] {
                let y = groupNorm(mdq_group_norm_nhwc, x, n: 1, hw: 2, c: 4, groups: 2, eps: eps, gamma: gamma, beta: beta, silu: silu)
                let e = silu ? expectSilu : expect
                for i in 0..<8 { XCTAssertEqual(Double(y[i]), e[i], accuracy: 1e-6 * Swift.max(1, Swift.abs(e[i])), "\(isa) silu=\(silu) [\(i)]") }
            }
            // batch of two identical images gives the same numbers twice
            let y2 = groupNorm(mdq_group_norm_nhwc, x + x, n: 2, hw: 2, c: 4, groups: 2, eps: eps, gamma: gamma, beta: beta, silu: false)
            for i in 0..<8 { XCTAssertEqual(y2[i], y2[8 + i], isa); XCTAssertEqual(Double(y2[i]), expect[i], accuracy: 1e-6, isa) }
        }
    }

    func layerNorm(_ f: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int, Float, UnsafePointer<Float>?, UnsafePointer<Float>?) -> Void,
                   _ x: [Float], rows: Int, c: Int, eps: Float, gamma: [Float]?, beta: [Float]?) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        let g = gamma ?? [], b = beta ?? []
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                g.withUnsafeBufferPointer { gp in
                    b.withUnsafeBufferPointer { bp in
                        f(xp.baseAddress, yp.baseAddress, rows, c, eps, gamma == nil ? nil : gp.baseAddress, beta == nil ? nil : bp.baseAddress)
                    }
                }
            }
        }
        return y
    }

    func testLayerNormSweep() {
        var rng = SplitMix64(seed: 7)
        for c in Self.lengths {
            let rows = 3
            let x = (0..<(rows * c)).map { _ in -7 + 2 * rng.mixed(maxMagnitude: 50) }
            let gamma = (0..<c).map { _ in rng.uniform(-2, 2) }, beta = (0..<c).map { _ in rng.uniform(-1, 1) }
            for affine in [true, false] {
                let gm = affine ? gamma : nil, bt = affine ? beta : nil
                let expect = layerNorm(mdq_layer_norm_ref, x, rows: rows, c: c, eps: 1e-5, gamma: gm, beta: bt)
                forEachISA { isa in
                    let got = layerNorm(mdq_layer_norm, x, rows: rows, c: c, eps: 1e-5, gamma: gm, beta: bt)
                    assertBitEqual("layer_norm/\(isa)/c=\(c)/affine=\(affine)", got, expect)
                }
                // and the reference against a plain double LayerNorm
                for r in 0..<rows where c > 0 {
                    let row = x[(r * c)..<((r + 1) * c)].map(Double.init)
                    let mean = row.reduce(0, +) / Double(c)
                    let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(c)
                    let rstd = 1 / (variance + 1e-5).squareRoot()
                    for i in 0..<c {
                        let v = (row[i] - mean) * rstd * (affine ? Double(gamma[i]) : 1) + (affine ? Double(beta[i]) : 0)
                        // y = fma(fma(x, rstd, -mean*rstd), gamma, beta) in fp32 (as torch): the rounding of
                        // -mean*rstd bounds the error by a few ulp of |mean * rstd * gamma|
                        let g = affine ? Swift.abs(Double(gamma[i])) : 1
                        let tol = 2e-6 * Swift.max(1, Swift.abs(v), Swift.abs(mean * rstd) * g)
                        XCTAssertEqual(Double(expect[r * c + i]), v, accuracy: tol, "layer_norm ref c=\(c)")
                    }
                }
            }
        }
    }

    func testLayerNormHandComputed() {
        // x = [1, 2, 3, 4]: mean 2.5, variance 1.25
        let rstd = 1 / (1.25 + 1e-5).squareRoot()
        let gamma: [Float] = [1, -1, 2, 0.5], beta: [Float] = [0, 0.25, -0.5, 1]
        forEachISA { isa in
            let y = layerNorm(mdq_layer_norm, [1, 2, 3, 4], rows: 1, c: 4, eps: 1e-5, gamma: gamma, beta: beta)
            for i in 0..<4 {
                let e = (Double(i + 1) - 2.5) * rstd * Double(gamma[i]) + Double(beta[i])
                XCTAssertEqual(Double(y[i]), e, accuracy: 1e-6, isa)
            }
        }
    }

    // MARK: - arithmetic

    func testArithmeticExact() {
        var rng = SplitMix64(seed: 8)
        for n in Self.lengths {
            let a = rng.floats(n, maxMagnitude: 1e6), b = rng.floats(n, maxMagnitude: 1e6)
            let s = rng.uniform(-3, 3)
            forEachISA { isa in
                var y = [Float](repeating: .nan, count: n)
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { mdq_add(ap.baseAddress, bp.baseAddress, $0.baseAddress, n) } } }
                assertBitEqual("add/\(isa)/n=\(n)", y, zip(a, b).map { $0 + $1 })
                let scaled = apply({ mdq_scale($0, $1, $2, s) }, a)
                assertBitEqual("scale/\(isa)/n=\(n)", scaled, a.map { $0 * s })
                // in place: y may alias x
                var inPlace = a
                inPlace.withUnsafeMutableBufferPointer { mdq_scale($0.baseAddress, $0.baseAddress, n, s) }
                assertBitEqual("scale in place/\(isa)/n=\(n)", inPlace, a.map { $0 * s })
                for rows in [1, 3] {
                    let bias = Array(b.prefix(n))
                    var m = (0..<(rows * n)).map { _ in rng.mixed() }
                    let expect = m.enumerated().map { $0.element + bias[$0.offset % Swift.max(n, 1)] }
                    var viaRef = m
                    viaRef.withUnsafeMutableBufferPointer { mp in bias.withUnsafeBufferPointer { mdq_add_bias_rows_ref(mp.baseAddress, $0.baseAddress, rows, n) } }
                    m.withUnsafeMutableBufferPointer { mp in bias.withUnsafeBufferPointer { mdq_add_bias_rows(mp.baseAddress, $0.baseAddress, rows, n) } }
                    assertBitEqual("add_bias_rows/\(isa)/\(rows)x\(n)", m, expect)
                    assertBitEqual("add_bias_rows ref/\(rows)x\(n)", viaRef, expect)
                }
            }
        }
    }

    // MARK: - conversion

    func convert16(_ f: (UnsafePointer<UInt16>?, UnsafeMutablePointer<Float>?, Int) -> Void, _ x: [UInt16]) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { f(xp.baseAddress, $0.baseAddress, x.count) } }
        return y
    }

    func toBF16(_ f: (UnsafePointer<Float>?, UnsafeMutablePointer<UInt16>?, Int) -> Void, _ x: [Float]) -> [UInt16] {
        var y = [UInt16](repeating: 0xDEAD, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { f(xp.baseAddress, $0.baseAddress, x.count) } }
        return y
    }

    func testHalfToFloatAllValues() {
        let all = (0...0xFFFF).map { UInt16($0) }
        let expect = convert16(mdq_f16_to_f32_ref, all)
        // the reference against an independent decoding
        for h in all {
            let e = Int((h >> 10) & 0x1F), m = Double(h & 0x3FF), sign: Double = h & 0x8000 != 0 ? -1 : 1
            let got = expect[Int(h)]
            if e == 0x1F {
                if m == 0 { XCTAssertEqual(Double(got), sign * .infinity) } else { XCTAssertTrue(got.isNaN) }
            } else {
                let v = e == 0 ? sign * m * pow(2, -24) : sign * (1 + m / 1024) * pow(2, Double(e - 15))
                XCTAssertEqual(Double(got), v, "f16 \(h)")
                XCTAssertEqual(got.sign, sign < 0 ? .minus : .plus)
            }
        }
        forEachISA { isa in
            for n in Self.lengths {
                let slice = Array(all[1000..<(1000 + n)])
                assertBitEqual("f16_to_f32/\(isa)/n=\(n)", convert16(mdq_f16_to_f32, slice), convert16(mdq_f16_to_f32_ref, slice))
            }
            assertBitEqual("f16_to_f32/\(isa)/all", convert16(mdq_f16_to_f32, all), expect)
            let hand = convert16(mdq_f16_to_f32, [0x0001, 0x3C00, 0x7C00, 0xFC00, 0x03FF, 0x0400, 0x7BFF, 0x8000, 0x7E00, 0xC000])
            XCTAssertEqual(hand[0], 5.960464e-8, accuracy: 1e-13, isa)
            XCTAssertEqual(hand[0], Float(sign: .plus, exponent: -24, significand: 1), isa)
            XCTAssertEqual(hand[1], 1, isa)
            XCTAssertEqual(hand[2], .infinity, isa)
            XCTAssertEqual(hand[3], -.infinity, isa)
            XCTAssertEqual(hand[4], 6.097555e-5, accuracy: 1e-11, isa)
            XCTAssertEqual(hand[5], 6.1035156e-5, isa)
            XCTAssertEqual(hand[6], 65504, isa)
            XCTAssertEqual(hand[7].bitPattern, 0x8000_0000, isa)
            XCTAssertTrue(hand[8].isNaN, isa)
            XCTAssertEqual(hand[9], -2, isa)
        }
    }

    func testBF16ToFloatAllValues() {
        let all = (0...0xFFFF).map { UInt16($0) }
        forEachISA { isa in
            let got = convert16(mdq_bf16_to_f32, all)
            for h in all { XCTAssertEqual(got[Int(h)].bitPattern, UInt32(h) << 16, isa) }
            for n in Self.lengths {
                let slice = Array(all[300..<(300 + n)])
                assertBitEqual("bf16_to_f32/\(isa)/n=\(n)", convert16(mdq_bf16_to_f32, slice), convert16(mdq_bf16_to_f32_ref, slice))
            }
        }
    }

    func testFloatToBF16() {
        var rng = SplitMix64(seed: 9)
        // random bit patterns cover every class: normals, subnormals, inf, NaN, both signs
        let bits = (0..<20_000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        let expect = toBF16(mdq_f32_to_bf16_ref, bits)
        // the reference against round-to-nearest-even done in 64-bit integers
        for (i, v) in bits.enumerated() {
            if v.isNaN { XCTAssertEqual(expect[i], 0x7FC0); continue }
            let u = UInt64(v.bitPattern), lowBits = u & 0xFFFF
            var hi = u >> 16
            if lowBits > 0x8000 || (lowBits == 0x8000 && hi & 1 == 1) { hi += 1 }
            XCTAssertEqual(UInt64(expect[i]), hi)
        }
        forEachISA { isa in
            XCTAssertEqual(toBF16(mdq_f32_to_bf16, bits), expect, isa)
            for n in Self.lengths {
                let slice = Array(bits.prefix(n))
                XCTAssertEqual(toBF16(mdq_f32_to_bf16, slice), toBF16(mdq_f32_to_bf16_ref, slice), "\(isa) n=\(n)")
            }
            let cases: [(UInt32, UInt16)] = [
                (0x3F80_8000, 0x3F80),  // 1 + 2^-8: exactly half way, rounds to even (down)
                (0x3F81_8000, 0x3F82),  // 1 + 3*2^-8: half way, rounds to even (up)
                (0x3F80_8001, 0x3F81),  // just above half way
                (0x3F80_7FFF, 0x3F80),  // just below half way
                (0xBF80_8000, 0xBF80),  // negative half way
                (0x7F7F_FFFF, 0x7F80),  // FLT_MAX rounds to infinity
                (0x7F80_0000, 0x7F80), (0xFF80_0000, 0xFF80),  // +-inf
                (0x7FC0_0001, 0x7FC0), (0x7F80_0001, 0x7FC0), (0xFFC0_0000, 0x7FC0),  // NaNs stay (quiet) NaN
                (0x8000_0000, 0x8000), (0x0000_0000, 0x0000),  // signed zeros
                (0x0000_8000, 0x0000), (0x0001_8000, 0x0002), (0x0000_8001, 0x0001),  // subnormals
            ]
            let got = toBF16(mdq_f32_to_bf16, cases.map { Float(bitPattern: $0.0) })
            for (i, c) in cases.enumerated() {
                XCTAssertEqual(got[i], c.1, "\(isa) \(String(c.0, radix: 16)) -> \(String(got[i], radix: 16))")
            }
        }
    }

    // MARK: - quantization

    /// PyTorch's fake quant in fp32: (clamp(round(x / delta) + zp, qmin, qmax) - zp) * delta.
    static func fakeQuant(_ x: Float, _ delta: Float, _ zp: Float, _ qmin: Float, _ qmax: Float) -> Float {
        var q = (x / delta).rounded(.toNearestOrEven) + zp
        q = q > qmin ? q : qmin
        q = q < qmax ? q : qmax
        return (q - zp) * delta
    }

    func fakeQuantTensor(_ f: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Float, Float, Float, Float) -> Void,
                         _ x: [Float], _ d: Float, _ zp: Float, _ qmin: Float, _ qmax: Float) -> [Float] {
        apply({ f($0, $1, $2, d, zp, qmin, qmax) }, x)
    }

    func testFakeQuantTensorExact() {
        var rng = SplitMix64(seed: 10)
        let params: [(Float, Float, Float, Float)] = [  // delta, zero point, qmin, qmax
            (0.0137, 0, -128, 127), (0.5, 7, 0, 255), (3.0, -3, 0, 15), (0.25, 0, -2, 1), (1e-3, 100, 0, 255),
        ]
        for n in Self.lengths {
            let x = rng.floats(n, maxMagnitude: 50)
            for (d, zp, lo, hi) in params {
                let expect = fakeQuantTensor(mdq_fake_quant_tensor_ref, x, d, zp, lo, hi)
                assertBitEqual("fake_quant ref vs torch formula", expect, x.map { Self.fakeQuant($0, d, zp, lo, hi) })
                forEachISA { isa in
                    assertBitEqual("fake_quant_tensor/\(isa)/n=\(n)/d=\(d)", fakeQuantTensor(mdq_fake_quant_tensor, x, d, zp, lo, hi), expect)
                }
            }
        }
    }

    func testFakeQuantHandCases() {
        forEachISA { isa in
            // half-way values round to even: x/delta = 0.5, 1.5, 2.5, -0.5, -2.5, 3.5 -> 0, 2, 2, -0, -2, 4
            let d: Float = 0.25
            let x: [Float] = [0.5, 1.5, 2.5, -0.5, -2.5, 3.5].map { $0 * d }
            let y = fakeQuantTensor(mdq_fake_quant_tensor, x, d, 0, -128, 127)
            XCTAssertEqual(y, [0, 2, 2, 0, -2, 4].map { $0 * d }, isa)
            // clamping at both ends (zero point shifts the grid)
            let c = fakeQuantTensor(mdq_fake_quant_tensor, [100, -100, 0.31, -0.31], 0.1, 3, 0, 15)
            XCTAssertEqual(c[0], Float(12) * 0.1, isa)   // q = 15 -> (15 - 3) * 0.1
            XCTAssertEqual(c[1], Float(-3) * 0.1, isa)   // q = 0 -> (0 - 3) * 0.1
            XCTAssertEqual(c[2], Float(3) * 0.1, isa)
            XCTAssertEqual(c[3], Float(-3) * 0.1, isa)
            // 2-bit symmetric grid qmin = -2, qmax = 1: values -2d .. 1d only
            let xs = (0..<41).map { Float(-1 + Double($0) * 0.05) }
            let g = fakeQuantTensor(mdq_fake_quant_tensor, xs, d, 0, -2, 1)
            for (xi, yi) in zip(xs, g) {
                XCTAssertTrue([-0.5, -0.25, 0, 0.25].contains(yi), "\(isa) \(xi) -> \(yi)")
                XCTAssertEqual(yi, Self.fakeQuant(xi, d, 0, -2, 1), isa)
            }
            XCTAssertEqual(g.first, -0.5, isa)
            XCTAssertEqual(g.last, 0.25, isa)
        }
    }

    func testFakeQuantRowsExact() {
        var rng = SplitMix64(seed: 11)
        for cols in Self.lengths {
            for (rows, qmin, qmax) in [(1, Float(-128), Float(127)), (5, -8, 7), (3, -2, 1)] {
                let w = rng.floats(rows * cols, maxMagnitude: 4)
                let delta = (0..<rows).map { _ in rng.uniform(0.001, 0.5) }
                func run(_ f: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int, UnsafePointer<Float>?, Float, Float) -> Void) -> [Float] {
                    var y = [Float](repeating: .nan, count: w.count)
                    w.withUnsafeBufferPointer { wp in delta.withUnsafeBufferPointer { dp in y.withUnsafeMutableBufferPointer {
                        f(wp.baseAddress, $0.baseAddress, rows, cols, dp.baseAddress, qmin, qmax) } } }
                    return y
                }
                let expect = run(mdq_fake_quant_rows_ref)
                assertBitEqual("fake_quant_rows ref vs torch formula", expect,
                               w.enumerated().map { Self.fakeQuant($0.element, delta[$0.offset / Swift.max(cols, 1)], 0, qmin, qmax) })
                forEachISA { isa in assertBitEqual("fake_quant_rows/\(isa)/\(rows)x\(cols)", run(mdq_fake_quant_rows), expect) }
            }
        }
    }

    func testMinMaxAndAbsMax() {
        var rng = SplitMix64(seed: 12)
        for n in Self.lengths where n > 0 {
            var x = rng.floats(n, maxMagnitude: 1e4)
            if n > 20 { x[n - 1] = 5e4; x[n / 2] = -7e4 }  // extremes in the tail and the middle
            var rmin: Float = 0, rmax: Float = 0
            mdq_minmax_ref(x, n, &rmin, &rmax)
            XCTAssertEqual(rmin, x.min()!)
            XCTAssertEqual(rmax, x.max()!)
            forEachISA { isa in
                var mn: Float = .nan, mx: Float = .nan
                mdq_minmax(x, n, &mn, &mx)
                XCTAssertEqual(mn, rmin, "\(isa) n=\(n)")
                XCTAssertEqual(mx, rmax, "\(isa) n=\(n)")
                for rows in [1, 4] {
                    let cols = n / rows
                    guard cols > 0 else { continue }
                    var got = [Float](repeating: .nan, count: rows), ref = got
                    mdq_absmax_rows(x, rows, cols, &got)
                    mdq_absmax_rows_ref(x, rows, cols, &ref)
                    assertBitEqual("absmax_rows/\(isa)/\(rows)x\(cols)", got, ref)
                    for r in 0..<rows { XCTAssertEqual(got[r], x[(r * cols)..<((r + 1) * cols)].map { Swift.abs($0) }.max()!, isa) }
                }
            }
        }
        // all-negative and single-element inputs
        forEachISA { isa in
            var mn: Float = 0, mx: Float = 0
            let neg: [Float] = (0..<37).map { -Float($0) - 1 }
            mdq_minmax(neg, neg.count, &mn, &mx)
            XCTAssertEqual(mn, -37, isa); XCTAssertEqual(mx, -1, isa)
            mdq_minmax([2.5], 1, &mn, &mx)
            XCTAssertEqual(mn, 2.5, isa); XCTAssertEqual(mx, 2.5, isa)
            var am: [Float] = [1]
            mdq_absmax_rows(neg, 1, 37, &am)
            XCTAssertEqual(am[0], 37, isa)
        }
    }

    /// NaN (several payloads, both signs) and ±Inf at the edges, in the middle, at vector and tail
    /// boundaries, and everywhere; the largest finite values, subnormals and -0 must not count. The
    /// expected count comes from Swift's `isFinite`, independent of the C reference.
    func testCountNonFinite() {
        let specials: [Float] = [.nan, -.nan, Float(bitPattern: 0x7fa0_0001), Float(bitPattern: 0xffc0_1234), .infinity, -.infinity]
        let extremes: [Float] = [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0, Float.leastNormalMagnitude / 4]
        var rng = SplitMix64(seed: 31)
        for n in Self.lengths + [100, 4099] {
            var base = rng.floats(n, maxMagnitude: 1e30)
            for i in stride(from: 0, to: n, by: 5) { base[i] = extremes[(i / 5) % extremes.count] }
            var placements: [[Int]] = [[]]
            if n > 0 {
                placements += [[0], [n - 1], [n / 2], [0, n - 1], Array(0..<n)]
                for boundary in [7, 8, 15, 16, 31, 32] where boundary < n { placements.append([boundary]) }
                placements.append(Array(stride(from: 1, to: n, by: 3)))
            }
            for (p, positions) in placements.enumerated() {
                var x = base
                for (k, i) in positions.enumerated() { x[i] = specials[(k + p) % specials.count] }
                let expected = x.filter { !$0.isFinite }.count
                XCTAssertEqual(mdq_count_nonfinite_ref(x, n), expected, "ref n=\(n) positions=\(positions.prefix(4))")
                forEachISA { isa in
                    XCTAssertEqual(mdq_count_nonfinite(x, n), expected, "\(isa) n=\(n) positions=\(positions.prefix(4))")
                    // An unaligned start (one float in) through the same data.
                    if n > 1 {
                        let tail = x.withUnsafeBufferPointer { mdq_count_nonfinite($0.baseAddress! + 1, n - 1) }
                        XCTAssertEqual(tail, x.dropFirst().filter { !$0.isFinite }.count, "\(isa) n=\(n) unaligned")
                    }
                }
            }
        }
    }
}
