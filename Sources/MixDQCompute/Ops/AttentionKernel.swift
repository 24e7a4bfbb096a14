import CDNNL
import CKernels
import Dispatch

/// Multi-head scaled dot-product attention, `softmax(q k^T * scale) v` per head, no mask
/// unless `causal`.
///
/// q is `[B, N, H*d]`, k and v are `[B, M, H*d]` with channel = head*d + i (diffusers' and
/// transformers' head split). Scores are fp32 and the softmax is max-subtracted, as SDPA does.
public enum AttentionKernel {
    /// Which kernel runs a bf16 attention: `automatic` takes the blocked kernel where the CPU has an
    /// engine for it (AMX tiles, else AVX512-BF16); `oneDNN` keeps the two-matmul path; `blocked`
    /// names an engine (benchmarks time one against the other, tests cover each).
    public enum Implementation: Sendable, Equatable { case automatic, oneDNN, blocked(BlockedBF16Attention.Engine) }
    /// What calls that do not name an implementation get (a benchmark switches it between forwards).
    nonisolated(unsafe) public static var defaultImplementation: Implementation = .automatic

    /// The blocked engine `automatic` runs this attention on (bf16, head dim <= 64, no mask, an
    /// engine on this CPU, `MIXDQ_ATTENTION` not `onednn`); nil: oneDNN's matmuls.
    public static func blockedEngine(precision: Precision, headDim: Int, causal: Bool = false) -> BlockedBF16Attention.Engine? {
        guard precision == .bf16, BlockedBF16Attention.takes(headDim: headDim, causal: causal) else { return nil }
        return BlockedBF16Attention.preferred
    }

    /// `precision: .bf16` runs the two matmuls in bf16 (fp32 scores and softmax): in blocks of query
    /// rows where the CPU has an engine for it (`BlockedBF16Attention`), else on oneDNN.
    public static func scaledDotProduct(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float? = nil,
                                        causal: Bool = false, precision: Precision = .fp32,
                                        implementation: Implementation? = nil) throws -> Tensor {
        let implementation = implementation ?? defaultImplementation
        guard q.rank == 3, k.rank == 3, v.rank == 3, heads > 0, q.shape[2] % heads == 0, k.shape[0] == q.shape[0],
              v.shape[0] == q.shape[0], k.shape[2] == q.shape[2], v.shape[2] == q.shape[2], v.shape[1] == k.shape[1] else {
            throw DNNLError(operation: "attention with \(heads) heads: shapes q\(q.shape) k\(k.shape) v\(v.shape)",
                            status: dnnl_invalid_arguments)
        }
        if q.count == 0 || k.shape[1] == 0 { return Tensor(shape: q.shape, repeating: 0) }
        return try OpProfiler.measure("attention") {
            let d = q.shape[2] / heads
            let engine: BlockedBF16Attention.Engine?
            switch implementation {
            case .automatic: engine = blockedEngine(precision: precision, headDim: d, causal: causal)
            case .oneDNN: engine = nil
            case .blocked(let named):
                let what = "attention \(precision.rawValue) (\(named.rawValue)) heads \(heads) head dim \(d)\(causal ? " causal" : "")"
                guard precision == .bf16, BlockedBF16Attention.takes(headDim: d, causal: causal) else {
                    throw BlockedBF16AttentionError(what: what, reason: "the blocked kernel takes bf16, head dims up to 64 and no causal mask")
                }
                guard BlockedBF16Attention.isAvailable(named) else {
                    throw BlockedBF16AttentionError(what: what, reason: "not available on this CPU (\(CPUInfo.current.summary))")
                }
                engine = named
            }
            if let engine {
                return try BlockedBF16Attention.run(q: q, k: k, v: v, heads: heads, scale: scale ?? 1 / Float(d).squareRoot(), engine: engine)
            }
            // Very long sequences (the VAE's 4096x4096 single head at 512x512) keep the blocked
            // OpenBLAS path, whose score matrix stays cache-sized.
            if precision == .bf16 || q.shape[0] * heads * q.shape[1] * k.shape[1] <= 16 << 20 {
                return try DNNLAttention.run(q: q, k: k, v: v, heads: heads, scale: scale ?? 1 / Float(d).squareRoot(),
                                         causal: causal, bf16: precision == .bf16)
            }
            return compute(q: q, k: k, v: v, heads: heads, scale: scale, causal: causal)
        }
    }

    private static func compute(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float?, causal: Bool) -> Tensor {
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3)
        let (b, n, c) = (q.shape[0], q.shape[1], q.shape[2])
        let m = k.shape[1]
        precondition(k.shape[0] == b && v.shape[0] == b && k.shape[2] == c && v.shape[2] == c && v.shape[1] == m,
                     "attention shapes q\(q.shape) k\(k.shape) v\(v.shape)")
        precondition(c % heads == 0)
        let d = c / heads
        let s = scale ?? 1 / Float(d).squareRoot()
        let out = Tensor(uninitializedShape: [b, n, c])
        // Query rows are processed in blocks so the score matrix stays cache-sized for long sequences.
        let block = min(n, 512)
        let scores = Tensor(uninitializedShape: [block, m])
        for bi in 0..<b {
            for h in 0..<heads {
                let qh = q.data + bi * n * c + h * d
                let kh = k.data + bi * m * c + h * d
                let vh = v.data + bi * m * c + h * d
                let oh = out.data + bi * n * c + h * d
                var r0 = 0
                while r0 < n {
                    let rows = min(block, n - r0)
                    GEMM.gemm(transA: false, transB: true, m: rows, n: m, k: d, alpha: s,
                              a: qh + r0 * c, lda: c, b: kh, ldb: c, beta: 0, c: scores.data, ldc: m)
                    if causal {
                        for r in 0..<rows {
                            let row = scores.data + r * m
                            let q = r0 + r
                            if q + 1 < m { for j in (q + 1)..<m { row[j] = -.infinity } }
                        }
                    }
                    mdq_softmax_rows(scores.data, rows, m, 1)
                    GEMM.gemm(transA: false, transB: false, m: rows, n: d, k: m, alpha: 1,
                              a: scores.data, lda: m, b: vh, ldb: c, beta: 0, c: oh + r0 * c, ldc: c)
                    r0 += rows
                }
            }
        }
        return out
    }
}
