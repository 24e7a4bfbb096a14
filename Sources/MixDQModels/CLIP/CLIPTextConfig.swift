import Foundation

/// The MLP activation a CLIP text config names in `hidden_act`.
public enum CLIPActivation: String, Sendable {
    /// `x * sigmoid(1.702 x)` (OpenAI CLIP, SDXL TE1).
    case quickGelu = "quick_gelu"
    /// Exact erf GELU (OpenCLIP bigG, SDXL TE2).
    case gelu
}

/// transformers `CLIPTextConfig` as written to `text_encoder/config.json` / `text_encoder_2/config.json`.
///
/// Keys that fix the architecture or the pooling rule are required; the rest take transformers' defaults.
/// Only a top-level text config is read: a full `CLIPConfig` (model_type "clip", nested `text_config`)
/// is rejected with a message saying so.
public struct CLIPTextConfig: Decodable, Sendable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var hiddenAct: CLIPActivation
    public var layerNormEps: Float
    public var maxPositionEmbeddings: Int
    public var vocabSize: Int
    /// Width of `text_projection`; required only for CLIPTextModelWithProjection.
    public var projectionDim: Int?
    /// 2 selects transformers' legacy pooling rule (argmax of the ids); see `CLIPTextModel.eosPositions`.
    public var eosTokenId: Int
    public var bosTokenId: Int?
    public var padTokenId: Int?
    /// `["CLIPTextModel"]` or `["CLIPTextModelWithProjection"]`; absent means CLIPTextModel.
    public var architectures: [String]

    public static let supportedArchitectures: Set<String> = ["CLIPTextModel", "CLIPTextModelWithProjection"]

    /// True when the checkpoint holds `text_projection` (SDXL's text_encoder_2).
    public var withProjection: Bool { architectures.contains("CLIPTextModelWithProjection") }
    public var headDim: Int { hiddenSize / numAttentionHeads }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings", vocabSize = "vocab_size"
        case projectionDim = "projection_dim", eosTokenId = "eos_token_id", bosTokenId = "bos_token_id"
        case padTokenId = "pad_token_id", architectures, modelType = "model_type", textConfig = "text_config"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ key: CodingKeys, _ message: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: [key], debugDescription: message))
        }
        // A CLIPConfig nests the text tower; reading its top level would silently pick up defaults.
        let modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
        if c.contains(.textConfig) || modelType == "clip" {
            throw fail(.textConfig, "this is a full CLIPConfig with a nested text config; expected a CLIPTextConfig "
                       + "(model_type 'clip_text_model') as in a diffusers text_encoder/ folder")
        }
        if let modelType, modelType != "clip_text_model" {
            throw fail(.modelType, "'\(modelType)' is not a CLIP text model (expected 'clip_text_model')")
        }
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? ["CLIPTextModel"]
        if let bad = architectures.first(where: { !Self.supportedArchitectures.contains($0) }) {
            throw fail(.architectures, "unsupported architecture '\(bad)' (supported: CLIPTextModel, CLIPTextModelWithProjection)")
        }
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        let act = try c.decode(String.self, forKey: .hiddenAct)
        guard let activation = CLIPActivation(rawValue: act) else {
            throw fail(.hiddenAct, "unsupported activation '\(act)' (supported: quick_gelu, gelu)")
        }
        hiddenAct = activation
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-5
        maxPositionEmbeddings = try c.decode(Int.self, forKey: .maxPositionEmbeddings)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim)
        eosTokenId = try c.decode(Int.self, forKey: .eosTokenId)
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId)

        // Upper bounds far above any CLIP (bigG: 1280 wide, 32 layers, 49408 tokens, 77 positions),
        // low enough that no weight size built from them overflows or asks for terabytes.
        for (key, v, limit) in [(CodingKeys.hiddenSize, hiddenSize, 16_384), (.intermediateSize, intermediateSize, 65_536),
                                (.numHiddenLayers, numHiddenLayers, 256), (.numAttentionHeads, numAttentionHeads, 16_384),
                                (.maxPositionEmbeddings, maxPositionEmbeddings, 16_384), (.vocabSize, vocabSize, 1 << 20)]
        where v <= 0 || v > limit {
            throw fail(key, v <= 0 ? "must be positive, got \(v)" : "must be at most \(limit), got \(v)")
        }
        if !(layerNormEps > 0) || !layerNormEps.isFinite {
            throw fail(.layerNormEps, "must be a positive finite number, got \(layerNormEps)")
        }
        if hiddenSize % numAttentionHeads != 0 {
            throw fail(.numAttentionHeads, "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        }
        if withProjection {
            guard let p = projectionDim else {
                throw DecodingError.keyNotFound(CodingKeys.projectionDim, .init(
                    codingPath: [], debugDescription: "CLIPTextModelWithProjection needs projection_dim"))
            }
            if p <= 0 || p > 16_384 { throw fail(.projectionDim, "must be in 1...16384, got \(p)") }
        }
    }

    /// Reads a config.json; errors name the file and the key.
    public static func load(_ url: URL) throws -> CLIPTextConfig {
        try ModelConfigError.decode(CLIPTextConfig.self, from: url)
    }
}
