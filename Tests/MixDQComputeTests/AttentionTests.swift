import Foundation
import XCTest
import MixDQCompute

/// The attention kernel against a direct double-precision evaluation, and bf16 against fp32.
final class AttentionTests: XCTestCase {
    func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var s = seed
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            t.data[i] = Float(Int64(bitPattern: s >> 11) % 2001 - 1000) / 500
        }
        return t
    }

    func reference(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, causal: Bool) -> [Double] {
        let (b, n, c, m) = (q.shape[0], q.shape[1], q.shape[2], k.shape[1])
        let d = c / heads
        var out = [Double](repeating: 0, count: b * n * c)
        for bi in 0..<b { for h in 0..<heads { for i in 0..<n {
            var logits = [Double](repeating: -.infinity, count: m)
            for j in 0..<m where !(causal && j > i) {
                var s = 0.0
                for e in 0..<d { s += Double(q.data[(bi * n + i) * c + h * d + e]) * Double(k.data[(bi * m + j) * c + h * d + e]) }
                logits[j] = s / Double(d).squareRoot()
            }
            let mx = logits.max()!
            let w = logits.map { exp($0 - mx) }
            let z = w.reduce(0, +)
            for e in 0..<d {
                var acc = 0.0
                for j in 0..<m { acc += w[j] / z * Double(v.data[(bi * m + j) * c + h * d + e]) }
                out[(bi * n + i) * c + h * d + e] = acc
            }
        } } }
        return out
    }

    func sqnr(_ got: Tensor, _ ref: [Double]) -> Double {
        var s = 0.0, e = 0.0
        for i in 0..<ref.count { s += ref[i] * ref[i]; e += (Double(got.data[i]) - ref[i]) * (Double(got.data[i]) - ref[i]) }
        return 10 * log10(s / max(e, 1e-300))
    }

    func cases() -> [(causal: Bool, q: Tensor, k: Tensor, v: Tensor)] {
        [false, true].map { causal in
            (causal, random([2, 13, 32], seed: 1), random([2, causal ? 13 : 9, 32], seed: 2), random([2, causal ? 13 : 9, 32], seed: 3))
        }
    }

    func testFP32MatchesReference() throws {
        for c in cases() {
            let ref = reference(c.q, c.k, c.v, heads: 2, causal: c.causal)
            let fp32 = try AttentionKernel.scaledDotProduct(q: c.q, k: c.k, v: c.v, heads: 2, causal: c.causal)
            let a = sqnr(fp32, ref)
            print(String(format: "attention causal=%@: fp32 SQNR %.1f dB", "\(c.causal)", a))
            XCTAssertGreaterThan(a, 100)
        }
    }

    func testBF16MatchesReference() throws {
        guard Precision.bf16.isAvailable else {
            throw XCTSkip("no oneDNN bf16 on this CPU (\(CPUInfo.current.summary))")
        }
        for c in cases() {
            let ref = reference(c.q, c.k, c.v, heads: 2, causal: c.causal)
            let bf16 = try AttentionKernel.scaledDotProduct(q: c.q, k: c.k, v: c.v, heads: 2, causal: c.causal, precision: .bf16)
            let b = sqnr(bf16, ref)
            print(String(format: "attention causal=%@: bf16 SQNR %.1f dB", "\(c.causal)", b))
            XCTAssertGreaterThan(b, 35)
        }
    }

    /// Past 16M scores (the VAE's single-head 4096-token attention at 512x512) fp32 attention runs on
    /// OpenBLAS in 512-row query blocks: 4100 queries make eight full blocks and one of 4 rows. Against
    /// the double-precision reference, with and without the causal mask.
    func testLongSequencesInQueryBlocksMatchReference() throws {
        for causal in [false, true] {
            let q = random([1, 4100, 16], seed: 4), k = random([1, 4097, 16], seed: 5), v = random([1, 4097, 16], seed: 6)
            let ref = reference(q, k, v, heads: 1, causal: causal)
            let got = try AttentionKernel.scaledDotProduct(q: q, k: k, v: v, heads: 1, causal: causal)
            let db = sqnr(got, ref)
            print(String(format: "attention 4100x4097 causal=%@ fp32 (OpenBLAS blocks): SQNR %.1f dB", "\(causal)", db))
            XCTAssertGreaterThan(db, 100)
        }
    }

    /// Where oneDNN has no bf16 (AVX2-only CPUs, or ONEDNN_MAX_CPU_ISA=AVX2), asking for it is a
    /// thrown error naming the primitive and its shapes, not a trap.
    func testBF16WithoutSupportThrowsNamingThePrimitive() throws {
        guard !Precision.bf16.isAvailable else {
            throw XCTSkip("this CPU has oneDNN bf16; run with ONEDNN_MAX_CPU_ISA=AVX2 to exercise the error path")
        }
        let c = cases()[0]
        XCTAssertThrowsError(try AttentionKernel.scaledDotProduct(q: c.q, k: c.k, v: c.v, heads: 2, precision: .bf16)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("attention bf16"), text)
            XCTAssertTrue(text.contains("13x9"), text)
        }
        XCTAssertThrowsError(try DNNLMatmul(weight: Tensor(shape: [8, 16], repeating: 0.5), bias: nil, precision: .bf16)) { error in
            XCTAssertTrue("\(error)".contains("matmul 256x16x8 bf16"), "\(error)")
        }
        XCTAssertThrowsError(try Precision.bf16.checkSupported())
    }

    func testAttentionRejectsMismatchedShapes() {
        let q = random([1, 4, 8], seed: 1), k = random([1, 5, 8], seed: 2), v = random([1, 6, 8], seed: 3)
        XCTAssertThrowsError(try AttentionKernel.scaledDotProduct(q: q, k: k, v: v, heads: 2))
        XCTAssertThrowsError(try AttentionKernel.scaledDotProduct(q: q, k: k, v: random([1, 5, 8], seed: 3), heads: 3))
    }

    /// The ISA ceiling limits both our C kernels and oneDNN when the environment asks for it.
    func testISACeilingFromEnvironment() throws {
        let env = ProcessInfo.processInfo.environment
        guard let limit = env["MIXDQ_MAX_CPU_ISA"] ?? env["ONEDNN_MAX_CPU_ISA"], limit.uppercased().hasPrefix("AVX2") else {
            throw XCTSkip("no AVX2 ceiling set (CI runs this suite again with ONEDNN_MAX_CPU_ISA=AVX2)")
        }
        let info = CPUInfo.current
        print("CPU under the AVX2 ceiling: \(info.summary)")
        XCTAssertNotEqual(info.kernelISA, "avx512")
        XCTAssertFalse(info.onednnISA.lowercased().contains("avx512"), info.onednnISA)
        XCTAssertFalse(Precision.bf16.isAvailable)
    }
}
