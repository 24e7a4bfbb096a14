import CDNNL
import CKernels
import Foundation

/// Multi-head attention on oneDNN, all heads of all samples in one primitive per matmul:
/// `S = Q Kᵀ` and `O = P V` read the heads straight out of the `[B, T, H*d]` layout through
/// strided descriptors, so no head transposes are materialised. Scores, softmax and the output
/// are fp32; in bf16 mode Q, K, V and P are rounded to bf16 (as PyTorch's bf16 SDPA does). The
/// softmax scale is the scores matmul's output scale; in bf16 mode each block of softmax rows is
/// rounded to bf16 while it is still in cache, and every staging copy runs on all cores.
/// Keeping attention on oneDNN also keeps OpenBLAS's spinning threads off the cores oneDNN uses.
final class DNNLAttention {
    private struct Shape: Hashable { let b: Int, h: Int, n: Int, m: Int, d: Int, bf16: Bool, scale: Float }
    private struct Compiled { let scores: DNNLPrimitive, context: DNNLPrimitive }
    nonisolated(unsafe) private static var cache: [Shape: Compiled] = [:]

    private static func matmul(_ src: dnnl_memory_desc_t, _ wei: dnnl_memory_desc_t, _ dst: dnnl_memory_desc_t,
                               scale: Float = 1, _ what: String) throws -> DNNLPrimitive {
        var (s, w, d) = (src, wei, dst)
        var desc = dnnl_matmul_desc_t()
        try DNNLEngine.check(dnnl_matmul_desc_init(&desc, &s, &w, nil, &d), "\(what) desc_init")
        return try DNNLPrimitive(&desc, attributes: scale == 1 ? nil : DNNLAttributes(outputScales: .common(scale)), what)
    }

    /// bf16 operands are laid out head-major `[B, H, T, d]` (dense: oneDNN's fastest matmul path);
    /// fp32 operands are read in place through strides.
    private static func descriptors(_ sh: Shape) throws -> [dnnl_memory_desc_t] {
        let c = sh.h * sh.d
        let t = sh.bf16 ? dnnl_bf16 : dnnl_f32
        let (n, m, d, h) = (sh.n, sh.m, sh.d, sh.h)
        let q = try sh.bf16 ? DNNLEngine.memoryDesc([sh.b, h, n, d], t, strides: [h * n * d, n * d, d, 1]) : DNNLEngine.memoryDesc([sh.b, h, n, d], t, strides: [n * c, d, c, 1])
        let kT = try sh.bf16 ? DNNLEngine.memoryDesc([sh.b, h, d, m], t, strides: [h * m * d, m * d, 1, d]) : DNNLEngine.memoryDesc([sh.b, h, d, m], t, strides: [m * c, d, 1, c])
        let s = try DNNLEngine.memoryDesc([sh.b, h, n, m], dnnl_f32, strides: [h * n * m, n * m, m, 1])
        let p = try DNNLEngine.memoryDesc([sh.b, h, n, m], t, strides: [h * n * m, n * m, m, 1])
        let v = try sh.bf16 ? DNNLEngine.memoryDesc([sh.b, h, m, d], t, strides: [h * m * d, m * d, d, 1]) : DNNLEngine.memoryDesc([sh.b, h, m, d], t, strides: [m * c, d, c, 1])
        let o = try DNNLEngine.memoryDesc([sh.b, h, n, d], dnnl_f32, strides: [n * c, d, c, 1])
        return [q, kT, s, p, v, o]
    }

    static func run(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float, causal: Bool, bf16 useBF16: Bool) throws -> Tensor {
        let (b, n, c) = (q.shape[0], q.shape[1], q.shape[2])
        let m = k.shape[1]
        let what = "attention \(useBF16 ? "bf16" : "fp32") batch \(b) heads \(heads) \(n)x\(m) head dim \(heads > 0 ? c / heads : 0)"
        guard q.rank == 3, k.rank == 3, v.rank == 3, heads > 0, c % heads == 0, b > 0, n > 0, m > 0,
              k.shape[0] == b, v.shape[0] == b, k.shape[2] == c, v.shape[2] == c, v.shape[1] == m else {
            throw DNNLError(operation: "\(what): shapes q\(q.shape) k\(k.shape) v\(v.shape)", status: dnnl_invalid_arguments)
        }
        let sh = Shape(b: b, h: heads, n: n, m: m, d: c / heads, bf16: useBF16, scale: scale)
        let md = try descriptors(sh)
        let compiled: Compiled
        if let cached = cache[sh] { compiled = cached } else {
            compiled = Compiled(scores: try matmul(md[0], md[1], md[2], scale: scale, "\(what) scores"),
                                context: try matmul(md[3], md[4], md[5], "\(what) context"))
            cache[sh] = compiled
        }
        // bf16 mode: rounded, head-major copies; fp32 mode: the tensors themselves.
        var keep: [AlignedBuffer] = []
        let d = c / heads
        func operand(_ t: Tensor) -> UnsafeMutableRawPointer {
            guard useBF16 else { return UnsafeMutableRawPointer(t.data) }
            let buf = AlignedBuffer(byteCount: t.count * 2)
            let dst = buf.pointer.assumingMemoryBound(to: UInt16.self)
            let tt = t.shape[1]
            RowParallel.run(rows: t.shape[0] * tt, rowLength: c) { rows in
                for row in rows {
                    let (bi, ti) = (row / tt, row % tt)
                    for hi in 0..<heads {
                        mdq_f32_to_bf16(t.data + row * c + hi * d, dst + ((bi * heads + hi) * tt + ti) * d, d)
                    }
                }
            }
            keep.append(buf)
            return buf.pointer
        }
        let (qp, kp, vp) = (operand(q), operand(k), operand(v))
        let scoreCount = b * heads * n * m
        let scratch = ScoreScratch.take(bytes: scoreCount * (useBF16 ? 6 : 4))
        defer { ScoreScratch.give(scratch) }
        let scores = scratch.pointer.assumingMemoryBound(to: Float.self)
        let engine = DNNLEngine.shared
        var mems: [dnnl_memory_t] = []
        defer { mems.forEach { dnnl_memory_destroy($0) } }
        for (desc, pointer) in [(md[0], qp), (md[1], kp), (md[2], UnsafeMutableRawPointer(scores))] {
            mems.append(try engine.memory(desc, pointer))
        }
        try engine.execute(compiled.scores.primitive, [(DNNL_ARG_SRC, mems[0]), (DNNL_ARG_WEIGHTS, mems[1]), (DNNL_ARG_DST, mems[2])],
                           "\(what) scores")
        if causal {
            for r in 0..<(b * heads * n) {
                let i = r % n
                if i + 1 < m { for j in (i + 1)..<m { scores[r * m + j] = -.infinity } }
            }
        }
        // bf16: P rounded block by block right after its softmax, while the rows are in cache.
        let probabilities = useBF16 ? UnsafeMutableRawPointer(scores + scoreCount).assumingMemoryBound(to: UInt16.self) : nil
        let block = max(1, (32 << 10) / m)
        RowParallel.run(rows: b * heads * n, rowLength: m) { r in
            var lo = r.lowerBound
            while lo < r.upperBound {
                let rows = min(block, r.upperBound - lo)
                mdq_softmax_rows(scores + lo * m, rows, m, 1)
                if let probabilities { mdq_f32_to_bf16(scores + lo * m, probabilities + lo * m, rows * m) }
                lo += rows
            }
        }
        let pp = probabilities.map { UnsafeMutableRawPointer($0) } ?? UnsafeMutableRawPointer(scores)
        let out = Tensor(uninitializedShape: [b, n, c])
        for (desc, pointer) in [(md[3], pp), (md[4], vp), (md[5], UnsafeMutableRawPointer(out.data))] {
            mems.append(try engine.memory(desc, pointer))
        }
        try engine.execute(compiled.context.primitive, [(DNNL_ARG_SRC, mems[3]), (DNNL_ARG_WEIGHTS, mems[4]), (DNNL_ARG_DST, mems[5])],
                           "\(what) context")
        FLOPCounter.add(macs: 2 * b * n * m * c)
        withExtendedLifetime(keep) {}
        return out
    }
}

/// The score (and bf16 probability) matrix of one attention call, reused across calls: a fresh
/// multi-megabyte buffer per call costs one page fault per 4 KiB page (at 512x512 about 270k
/// faults per UNet forward). Buffers up to `keptBytes` are kept for the next call; larger ones
/// (long sequences) are freed at once so they do not stay resident.
enum ScoreScratch {
    static let keptBytes = 128 << 20
    private static let lock = NSLock()
    nonisolated(unsafe) private static var spare: AlignedBuffer?

    static func take(bytes: Int) -> AlignedBuffer {
        lock.lock(); defer { lock.unlock() }
        if let buffer = spare, buffer.byteCount >= bytes { spare = nil; return buffer }
        return AlignedBuffer(byteCount: bytes)
    }

    static func give(_ buffer: AlignedBuffer) {
        guard buffer.byteCount <= keptBytes else { return }
        lock.lock(); defer { lock.unlock() }
        if (spare?.byteCount ?? 0) < buffer.byteCount { spare = buffer }
    }
}
