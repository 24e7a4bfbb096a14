import MixDQCompute

/// The fuse diffusers' `fuse_lora` performs: W ← W + scale · (alpha / rank) · up · down, with the
/// matrices flattened past their first dimension (a conv LoRA's down is [rank, in, kh, kw], its up
/// [out, rank, 1, 1]), in float32.
enum LoRAFuse {
    /// Adds the module's product into `weight` in place; shapes are checked first.
    static func apply(_ module: LoRAModule, scale: Float, to weight: Tensor, file: String) throws {
        let rank = module.rank
        let out = weight.shape.first ?? 0
        let rowLength = out > 0 ? weight.count / out : 0
        let down = module.down, up = module.up
        let fits = rank > 0 && out > 0
            && down.count == rank * rowLength && Array(down.shape.dropFirst()).reduce(1, *) == rowLength
            && up.shape.count >= 2 && up.shape[0] == out && up.shape[1] == rank && up.count == out * rank
            && trimmed(Array(down.shape.dropFirst())) == trimmed(Array(weight.shape.dropFirst()))
        guard fits else {
            throw LoRAError.shapeMismatch(file: file, module: module.name, down: down.shape, up: up.shape, weight: weight.shape)
        }
        let factor = scale * (module.alpha ?? Float(rank)) / Float(rank)
        GEMM.gemm(transA: false, transB: false, m: out, n: rowLength, k: rank, alpha: factor,
                  a: up.data, lda: rank, b: down.data, ldb: rowLength, beta: 1, c: weight.data, ldc: rowLength)
    }

    /// A shape without trailing 1s: a linear LoRA on a 1x1 conv ([rank, in] against [out, in, 1, 1]) fits.
    private static func trimmed(_ shape: [Int]) -> [Int] {
        var s = shape
        while s.count > 1, s.last == 1 { s.removeLast() }
        return s
    }
}
