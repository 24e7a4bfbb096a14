import MixDQCompute

/// transformers `CLIPTextEmbeddings`: token embedding gathered per id plus the learned position embedding
/// of positions 0..<T (the `position_ids` buffer is always `arange`, so it is not read).
public final class CLIPTextEmbeddings {
    public let tokenEmbedding: Tensor      // [V, D]
    public let positionEmbedding: Tensor   // [P, D]

    public init(_ loader: ModuleLoader, config: CLIPTextConfig) throws {
        let d = config.hiddenSize
        tokenEmbedding = try loader.tensor("token_embedding.weight", shape: [config.vocabSize, d])
        positionEmbedding = try loader.tensor("position_embedding.weight", shape: [config.maxPositionEmbeddings, d])
    }

    public var dim: Int { tokenEmbedding.shape[1] }

    /// ids `B x T` (already checked against the vocabulary and P) -> `[B, T, D]`.
    public func callAsFunction(_ ids: [[Int32]]) -> Tensor {
        let b = ids.count, t = ids[0].count, d = dim
        let y = Tensor(uninitializedShape: [b, t, d])
        for (bi, row) in ids.enumerated() {
            for (ti, id) in row.enumerated() {
                let dst = y.data + (bi * t + ti) * d
                let tok = tokenEmbedding.data + Int(id) * d, pos = positionEmbedding.data + ti * d
                for i in 0..<d { dst[i] = tok[i] + pos[i] }
            }
        }
        return y
    }
}
