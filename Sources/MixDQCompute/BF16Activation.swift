/// An activation rounded to bf16 (round to nearest even) once, for every bf16 linear that reads it:
/// q, k and v of a self-attention, k and v of a cross-attention. Each bf16 matmul would round the
/// same fp32 input itself; sharing the copy does that once, with the same bits.
public final class BF16Activation: @unchecked Sendable {
    public let shape: [Int]
    let buffer: AlignedBuffer

    public init(rounding x: Tensor) {
        shape = x.shape
        buffer = AlignedBuffer(byteCount: max(x.count, 1) * 2)
        Ops.convertToBF16(x.data, buffer.pointer.assumingMemoryBound(to: UInt16.self), count: x.count)
    }

    /// Made only when more than one of `layers` would round this input themselves.
    public static func shared(_ x: Tensor, by layers: [Linear]) -> BF16Activation? {
        layers.count > 1 && layers.allSatisfy(\.takesBF16Input) ? BF16Activation(rounding: x) : nil
    }
}
