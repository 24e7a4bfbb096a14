import MixDQCompute

/// The text conditioning of a batch: `[B, 77, D]` context and, for SDXL, pooled `[B, P]` text.
public struct PromptEmbeddings {
    public var context: Tensor
    public var pooled: Tensor?

    public init(context: Tensor, pooled: Tensor?) { self.context = context; self.pooled = pooled }

    public var count: Int { context.shape[0] }

    /// Rows `range` of every tensor.
    public func slice(_ range: Range<Int>) -> PromptEmbeddings {
        PromptEmbeddings(context: PromptEmbeddings.rows(context, range), pooled: pooled.map { PromptEmbeddings.rows($0, range) })
    }

    /// Concatenation along the batch axis (CFG: [uncond, cond]).
    public static func concat(_ a: PromptEmbeddings, _ b: PromptEmbeddings) -> PromptEmbeddings {
        PromptEmbeddings(context: cat(a.context, b.context), pooled: a.pooled.flatMap { p in b.pooled.map { cat(p, $0) } })
    }

    /// All-zero conditioning (`force_zeros_for_empty_prompt`: SDXL's negative prompt when none is given).
    public func zeros() -> PromptEmbeddings {
        PromptEmbeddings(context: Tensor(zeros: context.shape), pooled: pooled.map { Tensor(zeros: $0.shape) })
    }

    /// A one-prompt embedding repeated `count` times along the batch axis.
    public func repeated(_ count: Int) -> PromptEmbeddings {
        let parts = Array(repeating: self, count: count)
        return parts.dropFirst().reduce(self) { PromptEmbeddings.concat($0, $1) }
    }

    static func rows(_ t: Tensor, _ r: Range<Int>) -> Tensor {
        let per = t.count / t.shape[0]
        let out = Tensor(uninitializedShape: [r.count] + t.shape.dropFirst())
        out.data.update(from: t.data + r.lowerBound * per, count: r.count * per)
        return out
    }

    static func cat(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: [a.shape[0] + b.shape[0]] + a.shape.dropFirst())
        out.data.update(from: a.data, count: a.count)
        (out.data + a.count).update(from: b.data, count: b.count)
        return out
    }
}
