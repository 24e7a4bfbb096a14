import CKernels
import Foundation
import XCTest
import MixDQCompute

/// The blocked bf16 attention, each engine this CPU has (AMX tiles, AVX512-BF16), against a
/// double-precision evaluation on the same bf16-rounded inputs, within an error bound derived from
/// where the kernel rounds.
final class BlockedBF16AttentionTests: XCTestCase {
    var engines: [BlockedBF16Attention.Engine] { BlockedBF16Attention.Engine.allCases.filter(BlockedBF16Attention.isAvailable) }

    func random(_ shape: [Int], seed: UInt64, amplitude: Float) -> Tensor { TestTensors.uniform(shape, seed: seed, amplitude: amplitude) }
    func bf16(_ t: Tensor) -> [Double] { TestTensors.bf16Widened(t) }

    /// Per output element: the fp64 attention of bf16(q), bf16(k), bf16(v) and its bound. With
    /// u = 2^-24 and γ(n) = nu / (1 - nu): each score is a sum of d exact products in fp32, then
    /// scaled (error ≤ scale γ(d) Σ|q k| + u|s|, ε_s the row's worst); the softmax takes
    /// exp(fma(s, scale, -max)) (the argument rounded once: u·|s - max|, at most u·r with r the row's
    /// score range; exp ~2u) and sums in float (γ(m)), then 1/sum and the product (u each), so P is
    /// relative 2 ε_s + u·r + γ(m) + 4u; rounding P to bf16 is relative 2^-8 (8 significant bits);
    /// the context is a sum of m exact products in fp32, γ(m). So
    /// |ΔO| ≤ (2^-8 + 2 ε_s + u·r + 2γ(m) + 4u) Σ_j P_j |v_j|, plus 2^-126 per key for flushed denormals.
    func reference(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float) -> (value: [Double], bound: [Double]) {
        let (b, n, c, m) = (q.shape[0], q.shape[1], q.shape[2], k.shape[1])
        let d = c / heads
        let (qq, kk, vv) = (bf16(q), bf16(k), bf16(v))
        let u = pow(2.0, -24.0)
        func gamma(_ n: Int) -> Double { Double(n) * u / (1 - Double(n) * u) }
        var value = [Double](repeating: 0, count: b * n * c), bound = value
        for bi in 0..<b { for h in 0..<heads { for i in 0..<n {
            var logits = [Double](repeating: 0, count: m)
            var epsS = 0.0
            for j in 0..<m {
                var s = 0.0, a = 0.0
                for e in 0..<d {
                    let p = qq[(bi * n + i) * c + h * d + e] * kk[(bi * m + j) * c + h * d + e]
                    s += p; a += abs(p)
                }
                logits[j] = s * Double(scale)
                epsS = max(epsS, Double(scale) * gamma(d) * a + u * abs(logits[j]))
            }
            let mx = logits.max()!
            let w = logits.map { exp($0 - mx) }
            let z = w.reduce(0, +)
            let range = mx - logits.min()!
            let relative = pow(2.0, -8) + 2 * epsS + u * range + 2 * gamma(m) + 4 * u
            for e in 0..<d {
                var acc = 0.0, mass = 0.0, vmax = 0.0
                for j in 0..<m {
                    let vj = vv[(bi * m + j) * c + h * d + e]
                    acc += w[j] / z * vj; mass += w[j] / z * abs(vj); vmax = max(vmax, abs(vj))
                }
                value[(bi * n + i) * c + h * d + e] = acc
                bound[(bi * n + i) * c + h * d + e] = 1.01 * relative * mass + Double(m) * pow(2.0, -126) * vmax
            }
        } } }
        return (value, bound)
    }

    /// Odd token counts (partial 16-row query blocks, keys padded to 64), head dims from 8 to 64
    /// (odd ones too: padded depth), two samples, 77-token cross-attention, and inputs large enough
    /// that the softmax is nearly one-hot.
    func testMatchesReferenceWithinDerivedBound() throws {
        guard !engines.isEmpty else { throw XCTSkip("neither AMX tiles nor AVX512-BF16 here (\(CPUInfo.current.summary))") }
        for engine in engines { try check(engine) }
    }

    func check(_ engine: BlockedBF16Attention.Engine) throws {
        let cases: [(b: Int, n: Int, m: Int, heads: Int, d: Int, amplitude: Float)] = [
            (2, 37, 77, 3, 64, 2), (1, 16, 64, 2, 32, 2), (1, 1, 1, 1, 8, 2), (1, 50, 130, 2, 40, 2),
            (1, 33, 100, 1, 63, 2), (2, 20, 17, 2, 16, 6), (1, 70, 70, 2, 64, 8),
        ]
        for (index, t) in cases.enumerated() {
            let c = t.heads * t.d
            let seed = UInt64(index * 3)
            let q = random([t.b, t.n, c], seed: seed + 1, amplitude: t.amplitude)
            let k = random([t.b, t.m, c], seed: seed + 2, amplitude: t.amplitude)
            let v = random([t.b, t.m, c], seed: seed + 3, amplitude: 2)
            let scale = 1 / Float(t.d).squareRoot()
            let got = try AttentionKernel.scaledDotProduct(q: q, k: k, v: v, heads: t.heads, precision: .bf16, implementation: .blocked(engine))
            let ref = reference(q: q, k: k, v: v, heads: t.heads, scale: scale)
            var worst = 0.0
            for i in 0..<got.count {
                let err = abs(Double(got.data[i]) - ref.value[i])
                worst = max(worst, err / ref.bound[i])
                if err > ref.bound[i] {
                    XCTFail("\(engine.rawValue) case \(t) element \(i): \(got.data[i]) vs \(ref.value[i]), error \(err) > bound \(ref.bound[i])")
                    break
                }
            }
            print(String(format: "%@ attention b%d n%d m%d heads %d d%d amplitude %.0f: worst error %.3f of the bound",
                         engine.rawValue as NSString, t.b, t.n, t.m, t.heads, t.d, t.amplitude, worst))
        }
    }

    /// Automatic selection takes an engine where one exists, for bf16 with head dims up to 64 and
    /// no mask only; AMX tiles come first.
    func testAutomaticSelection() throws {
        let automatic = AttentionKernel.blockedEngine(precision: .bf16, headDim: 64)
        if ProcessInfo.processInfo.environment["MIXDQ_ATTENTION"] == nil {
            XCTAssertEqual(automatic, engines.first, CPUInfo.current.summary)
        }
        XCTAssertNil(AttentionKernel.blockedEngine(precision: .bf16, headDim: 65))
        XCTAssertNil(AttentionKernel.blockedEngine(precision: .bf16, headDim: 64, causal: true))
        XCTAssertNil(AttentionKernel.blockedEngine(precision: .fp32, headDim: 64))
    }

    /// A head dimension above 64 is not the kernels' (the caller keeps the oneDNN path): each says so
    /// and leaves the output alone; naming an engine for such a shape, or one the CPU lacks, is an
    /// error that says which.
    func testRejectsWhatTheEnginesDoNotTake() throws {
        let q = random([1, 4, 130], seed: 1, amplitude: 1), q64 = random([1, 4, 128], seed: 2, amplitude: 1)
        for engine in BlockedBF16Attention.Engine.allCases {
            if !BlockedBF16Attention.isAvailable(engine) {
                XCTAssertThrowsError(try AttentionKernel.scaledDotProduct(q: q64, k: q64, v: q64, heads: 2, precision: .bf16,
                                                                          implementation: .blocked(engine))) { error in
                    XCTAssertTrue("\(error)".contains("(\(engine.rawValue)) heads 2 head dim 64: not available on this CPU"), "\(error)")
                }
                continue
            }
            XCTAssertThrowsError(try AttentionKernel.scaledDotProduct(q: q, k: q, v: q, heads: 2, precision: .bf16,
                                                                      implementation: .blocked(engine))) { error in
                XCTAssertTrue("\(error)".contains("head dims up to 64"), "\(error)")
            }
            var out = [Float](repeating: 7, count: 65)
            let zeros = [UInt16](repeating: 0, count: 64 * 128)
            let kernel = engine == .amxTiles ? mdq_attention_bf16_amx : mdq_attention_bf16_avx512
            XCTAssertEqual(kernel(zeros, zeros, zeros, &out, 1, 1, 1, 65, 1, 0, 1), -1)
            XCTAssertEqual(out, [Float](repeating: 7, count: 65))
        }
    }

    /// A ceiling turns off the engines it stands below, as it does oneDNN's ISAs: one without AMX in
    /// its name (AVX512_CORE_BF16 for a Zen 4) the tiles, one without BF16 either (CI's AVX2) both.
    func testCeilingTurnsEnginesOff() throws {
        let env = ProcessInfo.processInfo.environment
        guard let limit = (env["MIXDQ_MAX_CPU_ISA"] ?? env["ONEDNN_MAX_CPU_ISA"])?.uppercased(), !limit.isEmpty, limit != "ALL" else {
            throw XCTSkip("no ISA ceiling set (CI runs this suite again with ONEDNN_MAX_CPU_ISA=AVX2)")
        }
        if !limit.contains("AMX") { XCTAssertEqual(mdq_cpu_has_amx_bf16(), 0) }
        if !limit.contains("AMX") && !limit.contains("BF16") && !limit.contains("AVX10") {
            XCTAssertEqual(mdq_attention_bf16_avx512_available(), 0)
            XCTAssertNil(AttentionKernel.blockedEngine(precision: .bf16, headDim: 64))
        }
    }
}

extension BlockedBF16AttentionTests {
    /// The packing runs on all cores in arbitrary row ranges: any split (ranges cutting 16-token key
    /// groups, V's key pairs and batch boundaries) gives the buffers one call writes.
    func testPackingInRowRangesMatchesOneCall() throws {
        guard mdq_isa_detected() == MDQ_ISA_AVX512 else { throw XCTSkip("the packing needs AVX-512 (\(CPUInfo.current.summary))") }
        for (tokens, heads, d) in [(77, 3, 64), (40, 2, 63), (17, 1, 8)] {
            let x = random([2, tokens, heads * d], seed: UInt64(tokens), amplitude: 3)
            for layout in [MDQ_ATTENTION_QUERIES, MDQ_ATTENTION_KEYS, MDQ_ATTENTION_VALUES] {
                let count = mdq_attention_bf16_packed_count(Int32(layout.rawValue), 2, tokens, heads, d)
                var whole = [UInt16](repeating: 0, count: count), split = whole
                mdq_attention_bf16_pack(x.data, tokens, heads, d, Int32(layout.rawValue), 0, 2 * tokens, &whole)
                var begin = 0, step = 1
                while begin < 2 * tokens {
                    let end = min(2 * tokens, begin + step)
                    mdq_attention_bf16_pack(x.data, tokens, heads, d, Int32(layout.rawValue), begin, end, &split)
                    begin = end
                    step = step % 23 + 5  // 1, 6, 11, 16, 21, 3, ...: odd and even, inside and across groups
                }
                XCTAssertEqual(whole, split, "layout \(layout.rawValue) tokens \(tokens) heads \(heads) d \(d)")
                XCTAssertTrue(whole.contains { $0 != 0 })
            }
        }
    }
}
