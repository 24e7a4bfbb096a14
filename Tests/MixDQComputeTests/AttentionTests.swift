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

    func testFP32AndBF16MatchReference() {
        for causal in [false, true] {
            let q = random([2, 13, 32], seed: 1), k = random([2, causal ? 13 : 9, 32], seed: 2), v = random([2, causal ? 13 : 9, 32], seed: 3)
            let ref = reference(q, k, v, heads: 2, causal: causal)
            let fp32 = AttentionKernel.scaledDotProduct(q: q, k: k, v: v, heads: 2, causal: causal)
            let bf16 = AttentionKernel.scaledDotProduct(q: q, k: k, v: v, heads: 2, causal: causal, precision: .bf16)
            let (a, b) = (sqnr(fp32, ref), sqnr(bf16, ref))
            print(String(format: "attention causal=%@: fp32 SQNR %.1f dB, bf16 SQNR %.1f dB", "\(causal)", a, b))
            XCTAssertGreaterThan(a, 100)
            XCTAssertGreaterThan(b, 35)
        }
    }
}
