import CKernels
import Foundation

/// bf16 attention one block of 16 query rows at a time, so the score matrix stays in cache instead
/// of going through memory between two matmuls; the (batch, head) pairs are split over the cores.
/// Two engines run the same algorithm on the same packed bf16 layouts: AMX tiles
/// (`mdq_attention_bf16_amx`) and AVX512-BF16 dot products (`mdq_attention_bf16_avx512`, for CPUs
/// without tiles: Zen 4, Zen 5). Same rounding points as `DNNLAttention`'s bf16 mode; the softmax sums
/// in float (its error is far below the bf16 rounding of the probabilities). Used for head
/// dimensions up to 64 without a causal mask. `MIXDQ_ATTENTION=onednn` keeps the oneDNN path and
/// `MIXDQ_ATTENTION=avx512bf16` prefers the AVX512-BF16 engine where AMX exists (benchmarks).
public enum BlockedBF16Attention {
    public enum Engine: String, Sendable, CaseIterable {
        case amxTiles = "AMX tiles"
        case avx512BF16 = "AVX512-BF16 blocks"
    }

    static let maxHeadDim = 64

    /// Whether this CPU (under the ISA ceiling) runs `engine`.
    public static func isAvailable(_ engine: Engine) -> Bool {
        switch engine {
        case .amxTiles: return mdq_cpu_has_amx_bf16() != 0
        case .avx512BF16: return mdq_attention_bf16_avx512_available() != 0
        }
    }

    /// The engine automatic selection takes: AMX tiles, else AVX512-BF16; nil where neither runs or
    /// `MIXDQ_ATTENTION=onednn`.
    public static let preferred: Engine? = {
        let choice = ProcessInfo.processInfo.environment["MIXDQ_ATTENTION"]?.lowercased()
        if choice == "onednn" { return nil }
        let order: [Engine] = choice == "avx512bf16" ? [.avx512BF16, .amxTiles] : [.amxTiles, .avx512BF16]
        return order.first(where: isAvailable)
    }()

    static func takes(headDim: Int, causal: Bool) -> Bool { !causal && headDim <= maxHeadDim }

    /// q `[B, N, H*d]`, k and v `[B, M, H*d]` (shapes checked by the caller) -> `[B, N, H*d]`.
    static func run(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float, engine: Engine) throws -> Tensor {
        let (b, n, c, m) = (q.shape[0], q.shape[1], q.shape[2], k.shape[1])
        let d = c / heads
        // bf16 copies in the kernels' layouts, converted token row by token row on all cores (zeroed
        // first: the padding must read as zero).
        func packed(_ x: Tensor, tokens: Int, _ layout: mdq_attention_layout) -> AlignedBuffer {
            let count = mdq_attention_bf16_packed_count(Int32(layout.rawValue), b, tokens, heads, d)
            let buffer = AlignedBuffer(byteCount: count * 2)
            memset(buffer.pointer, 0, count * 2)
            let dst = buffer.pointer.assumingMemoryBound(to: UInt16.self)
            RowParallel.run(rows: b * tokens, rowLength: c) { rows in
                mdq_attention_bf16_pack(x.data, tokens, heads, d, Int32(layout.rawValue), rows.lowerBound, rows.upperBound, dst)
            }
            return buffer
        }
        let qp = packed(q, tokens: n, MDQ_ATTENTION_QUERIES)
        let kp = packed(k, tokens: m, MDQ_ATTENTION_KEYS)
        let vp = packed(v, tokens: m, MDQ_ATTENTION_VALUES)
        let out = Tensor(uninitializedShape: [b, n, c])
        let status = FirstStatus()
        let kernel = engine == .amxTiles ? mdq_attention_bf16_amx : mdq_attention_bf16_avx512
        RowParallel.run(rows: b * heads, rowLength: n * m) { range in
            let rc = kernel(qp.pointer.assumingMemoryBound(to: UInt16.self), kp.pointer.assumingMemoryBound(to: UInt16.self),
                            vp.pointer.assumingMemoryBound(to: UInt16.self), out.data, n, m, heads, d, scale,
                            range.lowerBound, range.upperBound)
            status.record(rc)
        }
        if status.value != 0 {
            throw BlockedBF16AttentionError(what: "attention bf16 (\(engine.rawValue)) batch \(b) heads \(heads) \(n)x\(m) head dim \(d)",
                                            reason: status.value == -2 ? "out of memory" : "shape not supported by the kernel (status \(status.value))")
        }
        FLOPCounter.add(macs: 2 * b * n * m * c)
        return out
    }
}

/// A blocked attention that cannot run: an engine this CPU lacks, a shape the kernel does not take,
/// or no memory for its scratch.
struct BlockedBF16AttentionError: Error, CustomStringConvertible, LocalizedError {
    let what: String, reason: String
    var description: String { "\(what): \(reason)" }
    var errorDescription: String? { description }
}
