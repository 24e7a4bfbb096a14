import CKernels
import Foundation

/// bf16 attention on AMX tiles (`mdq_attention_bf16_amx`), one block of 16 query rows at a time, so
/// the score matrix stays in cache instead of going through memory between two matmuls; the
/// (batch, head) pairs are split over the cores. Same rounding points as `DNNLAttention`'s bf16 mode;
/// the softmax sums in float (its error is far below the bf16 rounding of the probabilities).
/// Used where the CPU grants AMX, the head dimension is at most 64 and there is no causal mask;
/// `MIXDQ_ATTENTION=onednn` keeps the oneDNN path (for side-by-side benchmarks).
enum AMXAttention {
    static let maxHeadDim = 64

    static var isAvailable: Bool { mdq_cpu_has_amx_bf16() != 0 && !forcedOneDNN }

    private static let forcedOneDNN: Bool = {
        guard let v = ProcessInfo.processInfo.environment["MIXDQ_ATTENTION"] else { return false }
        return v.lowercased() == "onednn"
    }()

    static func applies(headDim: Int, causal: Bool) -> Bool { !causal && headDim <= maxHeadDim && isAvailable }

    /// q `[B, N, H*d]`, k and v `[B, M, H*d]` (shapes checked by the caller) -> `[B, N, H*d]`.
    static func run(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float) throws -> Tensor {
        let (b, n, c, m) = (q.shape[0], q.shape[1], q.shape[2], k.shape[1])
        let d = c / heads
        // bf16 copies in the tiles' layouts, converted token row by token row on all cores (zeroed
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
        RowParallel.run(rows: b * heads, rowLength: n * m) { range in
            let rc = mdq_attention_bf16_amx(qp.pointer.assumingMemoryBound(to: UInt16.self), kp.pointer.assumingMemoryBound(to: UInt16.self),
                                            vp.pointer.assumingMemoryBound(to: UInt16.self), out.data, n, m, heads, d, scale,
                                            range.lowerBound, range.upperBound)
            status.record(rc)
        }
        if status.value != 0 {
            throw AMXAttentionError(what: "attention bf16 (AMX) batch \(b) heads \(heads) \(n)x\(m) head dim \(d)",
                                    status: status.value)
        }
        FLOPCounter.add(macs: 2 * b * n * m * c)
        return out
    }
}

/// A failed AMX attention call: -1 a shape the kernel does not take, -2 out of memory.
struct AMXAttentionError: Error, CustomStringConvertible, LocalizedError {
    let what: String, status: Int32
    var description: String { "\(what): \(status == -2 ? "out of memory" : "shape not supported by the kernel") (status \(status))" }
    var errorDescription: String? { description }
}
