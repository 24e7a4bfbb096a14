import MixDQCompute

/// What `mixdq forward text-encoder` / `text-encoder-2` read and write, kept free of file I/O so it is
/// testable without the CLI.
extension CLIPTextModel {
    /// The named outputs of one forward: `out` = hidden_states[-2] (SDXL's context part), `last_hidden_state`,
    /// and `text_embeds` (with projection) or `pooler_output` (without), in transformers' names.
    public func forwardOutputs(ids: [[Int32]]) throws -> [(String, Tensor)] {
        let r = try encode(ids: ids, hiddenStateIndex: -2, includeLastHiddenState: true)
        var outputs: [(String, Tensor)] = [("out", r.hiddenState), ("last_hidden_state", r.lastHiddenState!)]
        if let e = r.textEmbeds { outputs.append(("text_embeds", e)) } else { outputs.append(("pooler_output", r.pooled!)) }
        return outputs
    }

    /// Token ids stored as float32 `[B, T]` (how the other forward inputs are stored); each must be an exact integer.
    public static func inputIDs(float t: Tensor, name: String = "input_ids") throws -> [[Int32]] {
        guard t.rank == 2 else { throw CLIPInputError("\(name) must be [B, T], got \(t.shape)") }
        let (b, n) = (t.shape[0], t.shape[1])
        return try (0..<b).map { r in
            try (0..<n).map { i in
                let v = t.data[r * n + i]
                guard v == v.rounded(), abs(v) < 2_147_483_648 else {
                    throw CLIPInputError("\(name)[\(r), \(i)] = \(v) is not an integer token id")
                }
                return Int32(v)
            }
        }
    }

    /// Token ids stored as little-endian int64 `[B, T]` (torch's dtype for input_ids).
    public static func inputIDs(int64 bytes: UnsafeRawBufferPointer, shape: [Int], name: String = "input_ids") throws -> [[Int32]] {
        guard shape.count == 2 else { throw CLIPInputError("\(name) must be [B, T], got \(shape)") }
        let (b, n) = (shape[0], shape[1])
        guard bytes.count == b * n * 8 else { throw CLIPInputError("\(name): \(bytes.count) bytes for int64 \(shape)") }
        return try (0..<b).map { r in
            try (0..<n).map { i in
                let v = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: (r * n + i) * 8, as: Int64.self))
                guard let id = Int32(exactly: v) else { throw CLIPInputError("\(name)[\(r), \(i)] = \(v) is out of range") }
                return id
            }
        }
    }
}
