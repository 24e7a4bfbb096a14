import Foundation
import MixDQCompute

/// What `CLIPTextModel.encode` returns. Hidden states are never final-LayerNorm'd (as in transformers).
public struct CLIPTextOutput {
    /// `hidden_states[hiddenStateIndex]` `[B, T, D]`; with the default -2 this is SDXL's context part.
    public var hiddenState: Tensor
    /// All L+1 hidden states (embeddings first) when requested, else empty.
    public var hiddenStates: [Tensor]
    /// `final_layer_norm(hidden_states[-1])` `[B, T, D]`, when requested.
    public var lastHiddenState: Tensor?
    /// `last_hidden_state` at each row's EOS position `[B, D]` (transformers' `pooler_output`).
    public var pooled: Tensor?
    /// `text_projection(pooled)` `[B, projection_dim]`, for CLIPTextModelWithProjection only.
    public var textEmbeds: Tensor?
}

/// Bad token ids handed to a CLIP encoder.
public struct CLIPInputError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// transformers `CLIPTextModel` / `CLIPTextModelWithProjection` (SDXL's text_encoder / text_encoder_2).
///
/// Built from the checkpoint's own key names (`text_model.encoder.layers.{i}.self_attn.q_proj`, ...), so every
/// Linear is registered under its transformers path and can switch to bf16 or a quantized kernel.
public final class CLIPTextModel {
    /// Keys a checkpoint may carry that the model never reads (the int64 `position_ids` buffer of older
    /// transformers); pass them to `SafetensorsWeightSource.open(folder:ignoredKeyPatterns:)`.
    public static let ignoredKeyPatterns = ["position_ids"]

    public let config: CLIPTextConfig
    public let withProjection: Bool
    public let registry: LayerRegistry
    public let embeddings: CLIPTextEmbeddings
    public let layers: [CLIPEncoderLayer]
    public let finalLayerNorm: LayerNorm
    public let textProjection: Linear?

    /// `withProjection` defaults to what the config's `architectures` says.
    public init(config: CLIPTextConfig, weights: WeightSource, withProjection: Bool? = nil, precision: Precision = .fp32,
                packForInference: Bool = false) throws {
        self.config = config
        let projected = withProjection ?? config.withProjection
        self.withProjection = projected
        let root = ModuleLoader(weights: weights, precision: precision, packForInference: packForInference)
        registry = root.registry
        let prefix = Self.textModelPrefix(weights)
        let tm = prefix.isEmpty ? root : root.child(prefix)
        embeddings = try CLIPTextEmbeddings(tm.child("embeddings"), config: config)
        layers = try (0..<config.numHiddenLayers).map {
            try CLIPEncoderLayer(tm.child("encoder.layers.\($0)"), config: config)
        }
        finalLayerNorm = try tm.layerNorm("final_layer_norm", channels: config.hiddenSize, eps: config.layerNormEps)
        if projected {
            // transformers defaults projection_dim to 512; a projection model's config always states it.
            textProjection = try root.linear("text_projection", in: config.hiddenSize,
                                             out: config.projectionDim ?? config.hiddenSize, bias: false)
        } else {
            textProjection = nil
        }
        try weights.finish()
    }

    /// Checkpoints name the tower `text_model.*` (also what transformers 4 writes for CLIPTextModel);
    /// transformers 5 saves a CLIPTextModel without that prefix. Both load; a missing key names the prefixed form.
    static func textModelPrefix(_ weights: WeightSource) -> String {
        if !weights.contains("text_model.embeddings.token_embedding.weight"),
           weights.contains("embeddings.token_embedding.weight") { return "" }
        return "text_model"
    }

    /// Runs the encoder on `ids` (B rows of T <= max_position_embeddings tokens). Only a causal mask applies.
    ///
    /// - hiddenStateIndex: which of the L+1 hidden states to return as `hiddenState`, Python-style
    ///   (-2 = penultimate layer, SDXL's choice; diffusers' `clip_skip = k` is `-(k + 2)`).
    /// - includeLastHiddenState: also run the remaining layers and the final LayerNorm to give
    ///   `lastHiddenState`, `pooled` and (with projection) `textEmbeds`. SDXL's TE1 needs none of these,
    ///   so with `false` its last layer is skipped.
    /// - allHiddenStates: keep every hidden state (costs memory; for parity tests).
    public func encode(ids: [[Int32]], hiddenStateIndex: Int = -2, includeLastHiddenState: Bool = true,
                       allHiddenStates: Bool = false) throws -> CLIPTextOutput {
        try validate(ids)
        let count = layers.count + 1
        let index = hiddenStateIndex < 0 ? count + hiddenStateIndex : hiddenStateIndex
        guard (0..<count).contains(index) else {
            throw CLIPInputError("hidden state index \(hiddenStateIndex) is out of range for \(layers.count) layers "
                                 + "(\(count) hidden states)")
        }
        let depth = includeLastHiddenState || allHiddenStates ? layers.count : index

        var h = embeddings(ids)                              // [B, T, D]
        var all: [Tensor] = allHiddenStates ? [h] : []
        var selected: Tensor? = index == 0 ? h : nil
        for (i, layer) in layers.prefix(depth).enumerated() {
            h = try layer(h)                                     // [B, T, D]
            if allHiddenStates { all.append(h) }
            if i + 1 == index { selected = h }
        }
        var out = CLIPTextOutput(hiddenState: selected!, hiddenStates: all)
        guard includeLastHiddenState else { return out }

        let last = finalLayerNorm(h)                         // [B, T, D]
        let pooled = gatherRows(last, at: Self.eosPositions(ids: ids, eosTokenId: config.eosTokenId)) // [B, D]
        out.lastHiddenState = last
        out.pooled = pooled
        out.textEmbeds = try textProjection.map { try $0(pooled) }   // [B, P]
        return out
    }

    /// The position pooled per row, as transformers picks it: with the legacy `eos_token_id == 2` the first
    /// largest id (`argmax`, which is 49407 in real vocabularies); otherwise the first position holding
    /// `eos_token_id`, or 0 when a row has none (argmax of an all-zero mask).
    public static func eosPositions(ids: [[Int32]], eosTokenId: Int) -> [Int] {
        ids.map { row in
            if eosTokenId == 2 {
                var best = 0
                for (i, v) in row.enumerated() where v > row[best] { best = i }
                return best
            }
            return row.firstIndex(where: { Int($0) == eosTokenId }) ?? 0
        }
    }

    /// x `[B, T, D]`, one position per row -> `[B, D]`.
    private func gatherRows(_ x: Tensor, at positions: [Int]) -> Tensor {
        let (t, d) = (x.shape[1], x.shape[2])
        let y = Tensor(uninitializedShape: [positions.count, d])
        for (b, p) in positions.enumerated() { (y.data + b * d).update(from: x.data + (b * t + p) * d, count: d) }
        return y
    }

    private func validate(_ ids: [[Int32]]) throws {
        guard let t = ids.first?.count, t > 0 else { throw CLIPInputError("input_ids is empty") }
        guard t <= config.maxPositionEmbeddings else {
            throw CLIPInputError("input_ids has \(t) tokens per row; the model has \(config.maxPositionEmbeddings) positions")
        }
        for (b, row) in ids.enumerated() {
            guard row.count == t else { throw CLIPInputError("input_ids row \(b) has \(row.count) tokens, row 0 has \(t)") }
            if let bad = row.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw CLIPInputError("input_ids row \(b) holds id \(bad), outside the vocabulary 0..<\(config.vocabSize)")
            }
        }
    }
}
