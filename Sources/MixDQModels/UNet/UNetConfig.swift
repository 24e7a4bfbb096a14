import Foundation

/// diffusers `UNet2DConditionModel` config (`unet/config.json`), for SDXL and SD1.5-style models.
///
/// Keys that fix the architecture are required; the rest take diffusers' defaults. Values this
/// implementation does not support are rejected by `validate()` with the key named.
public struct UNetConfig: Decodable, Sendable {
    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var downBlockTypes: [String]
    public var upBlockTypes: [String]
    public var midBlockType: String?
    public var layersPerBlock: IntOrList
    public var crossAttentionDim: IntOrList
    public var attentionHeadDim: IntOrList
    public var numAttentionHeads: IntOrList?
    public var transformerLayersPerBlock: IntOrList
    public var reverseTransformerLayersPerBlock: [Int]?
    public var useLinearProjection: Bool
    public var additionEmbedType: String?
    public var additionTimeEmbedDim: Int?
    public var projectionClassEmbeddingsInputDim: Int?
    public var normNumGroups: Int
    public var normEps: Float
    public var flipSinToCos: Bool
    public var freqShift: Int
    public var downsamplePadding: Int
    public var convInKernel: Int
    public var convOutKernel: Int
    public var actFn: String
    public var sampleSize: Int?
    public var classEmbedType: String?
    public var timeEmbeddingType: String
    public var timeCondProjDim: Int?
    public var resnetTimeScaleShift: String
    public var upcastAttention: Bool?
    public var onlyCrossAttention: Bool
    public var dualCrossAttention: Bool
    public var encoderHidDimType: String?
    public var centerInputSample: Bool
    public var attentionType: String
    public var midBlockScaleFactor: Float
    public var resnetOutScaleFactor: Float

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", blockOutChannels = "block_out_channels"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types", midBlockType = "mid_block_type"
        case layersPerBlock = "layers_per_block", crossAttentionDim = "cross_attention_dim"
        case attentionHeadDim = "attention_head_dim", numAttentionHeads = "num_attention_heads"
        case transformerLayersPerBlock = "transformer_layers_per_block"
        case reverseTransformerLayersPerBlock = "reverse_transformer_layers_per_block"
        case useLinearProjection = "use_linear_projection", additionEmbedType = "addition_embed_type"
        case additionTimeEmbedDim = "addition_time_embed_dim"
        case projectionClassEmbeddingsInputDim = "projection_class_embeddings_input_dim"
        case normNumGroups = "norm_num_groups", normEps = "norm_eps", flipSinToCos = "flip_sin_to_cos"
        case freqShift = "freq_shift", downsamplePadding = "downsample_padding", convInKernel = "conv_in_kernel"
        case convOutKernel = "conv_out_kernel", actFn = "act_fn", sampleSize = "sample_size"
        case classEmbedType = "class_embed_type", timeEmbeddingType = "time_embedding_type"
        case timeCondProjDim = "time_cond_proj_dim", resnetTimeScaleShift = "resnet_time_scale_shift"
        case upcastAttention = "upcast_attention", onlyCrossAttention = "only_cross_attention"
        case dualCrossAttention = "dual_cross_attention", encoderHidDimType = "encoder_hid_dim_type"
        case centerInputSample = "center_input_sample", attentionType = "attention_type"
        case midBlockScaleFactor = "mid_block_scale_factor", resnetOutScaleFactor = "resnet_out_scale_factor"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try c.decode(Int.self, forKey: .inChannels)
        outChannels = try c.decode(Int.self, forKey: .outChannels)
        blockOutChannels = try c.decode([Int].self, forKey: .blockOutChannels)
        downBlockTypes = try c.decode([String].self, forKey: .downBlockTypes)
        upBlockTypes = try c.decode([String].self, forKey: .upBlockTypes)
        midBlockType = try c.decodeIfPresent(String.self, forKey: .midBlockType) ?? "UNetMidBlock2DCrossAttn"
        layersPerBlock = try c.decode(IntOrList.self, forKey: .layersPerBlock)
        crossAttentionDim = try c.decode(IntOrList.self, forKey: .crossAttentionDim)
        attentionHeadDim = try c.decode(IntOrList.self, forKey: .attentionHeadDim)
        numAttentionHeads = try c.decodeIfPresent(IntOrList.self, forKey: .numAttentionHeads)
        transformerLayersPerBlock = try c.decodeIfPresent(IntOrList.self, forKey: .transformerLayersPerBlock) ?? .single(1)
        reverseTransformerLayersPerBlock = try c.decodeIfPresent([Int].self, forKey: .reverseTransformerLayersPerBlock)
        useLinearProjection = try c.decodeIfPresent(Bool.self, forKey: .useLinearProjection) ?? false
        additionEmbedType = try c.decodeIfPresent(String.self, forKey: .additionEmbedType)
        additionTimeEmbedDim = try c.decodeIfPresent(Int.self, forKey: .additionTimeEmbedDim)
        projectionClassEmbeddingsInputDim = try c.decodeIfPresent(Int.self, forKey: .projectionClassEmbeddingsInputDim)
        normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? 32
        normEps = try c.decodeIfPresent(Float.self, forKey: .normEps) ?? 1e-5
        flipSinToCos = try c.decodeIfPresent(Bool.self, forKey: .flipSinToCos) ?? true
        freqShift = try c.decodeIfPresent(Int.self, forKey: .freqShift) ?? 0
        downsamplePadding = try c.decodeIfPresent(Int.self, forKey: .downsamplePadding) ?? 1
        convInKernel = try c.decodeIfPresent(Int.self, forKey: .convInKernel) ?? 3
        convOutKernel = try c.decodeIfPresent(Int.self, forKey: .convOutKernel) ?? 3
        actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? "silu"
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        timeEmbeddingType = try c.decodeIfPresent(String.self, forKey: .timeEmbeddingType) ?? "positional"
        timeCondProjDim = try c.decodeIfPresent(Int.self, forKey: .timeCondProjDim)
        resnetTimeScaleShift = try c.decodeIfPresent(String.self, forKey: .resnetTimeScaleShift) ?? "default"
        upcastAttention = try c.decodeIfPresent(Bool.self, forKey: .upcastAttention)
        onlyCrossAttention = try c.decodeIfPresent(Bool.self, forKey: .onlyCrossAttention) ?? false
        dualCrossAttention = try c.decodeIfPresent(Bool.self, forKey: .dualCrossAttention) ?? false
        encoderHidDimType = try c.decodeIfPresent(String.self, forKey: .encoderHidDimType)
        centerInputSample = try c.decodeIfPresent(Bool.self, forKey: .centerInputSample) ?? false
        attentionType = try c.decodeIfPresent(String.self, forKey: .attentionType) ?? "default"
        midBlockScaleFactor = try c.decodeIfPresent(Float.self, forKey: .midBlockScaleFactor) ?? 1
        resnetOutScaleFactor = try c.decodeIfPresent(Float.self, forKey: .resnetOutScaleFactor) ?? 1
        try validate()
    }

    public static func load(_ url: URL) throws -> UNetConfig {
        try ModelConfigError.decode(UNetConfig.self, from: url)
    }

    public static let supportedDownBlocks: Set<String> = ["DownBlock2D", "CrossAttnDownBlock2D"]
    public static let supportedUpBlocks: Set<String> = ["UpBlock2D", "CrossAttnUpBlock2D"]

    /// Upper bounds on sizes read from the file: far above any real UNet (SDXL: 1280 channels,
    /// 10 transformer layers, 3 levels), low enough that no product of them overflows `Int` or
    /// asks for more memory than a machine has before a weight file is even read.
    public static let maxChannels = 65_536
    public static let maxLayers = 64
    public static let maxLevels = 8
    public static let maxKernel = 15
    public static let maxSampleSize = 1024

    /// Rejects what this implementation does not build, naming the key; bounds every size so
    /// nothing built from the config can trap (division by zero, a negative range, an overflow).
    func validate() throws {
        // The loader adds the file name (ModelConfigError.decode rethrows with it).
        func fail(_ m: String) throws -> Never { throw ModelConfigError(file: "", m) }
        func check(_ key: String, _ v: Int, in range: ClosedRange<Int>) throws {
            if !range.contains(v) { try fail("\(key) must be in \(range.lowerBound)...\(range.upperBound), got \(v)") }
        }
        func check(_ key: String, _ v: IntOrList, in range: ClosedRange<Int>) throws {
            switch v {
            case .single(let x): try check(key, x, in: range)
            case .list(let l): for (i, x) in l.enumerated() { try check("\(key)[\(i)]", x, in: range) }
            }
        }
        let n = blockOutChannels.count
        if n == 0 { try fail("block_out_channels is empty") }
        try check("block_out_channels (number of levels)", n, in: 1...Self.maxLevels)
        for (i, c) in blockOutChannels.enumerated() { try check("block_out_channels[\(i)]", c, in: 1...Self.maxChannels) }
        if downBlockTypes.count != n { try fail("down_block_types has \(downBlockTypes.count) entries, block_out_channels \(n)") }
        if upBlockTypes.count != n { try fail("up_block_types has \(upBlockTypes.count) entries, block_out_channels \(n)") }
        for t in downBlockTypes where !Self.supportedDownBlocks.contains(t) {
            try fail("down_block_types: unknown block type '\(t)' (supported: \(Self.supportedDownBlocks.sorted().joined(separator: ", ")))")
        }
        for t in upBlockTypes where !Self.supportedUpBlocks.contains(t) {
            try fail("up_block_types: unknown block type '\(t)' (supported: \(Self.supportedUpBlocks.sorted().joined(separator: ", ")))")
        }
        if midBlockType != "UNetMidBlock2DCrossAttn" { try fail("mid_block_type: unsupported '\(midBlockType ?? "null")' (supported: UNetMidBlock2DCrossAttn)") }
        var perBlock: [(String, IntOrList)] = [("layers_per_block", layersPerBlock), ("cross_attention_dim", crossAttentionDim),
                                               ("attention_head_dim", attentionHeadDim),
                                               ("transformer_layers_per_block", transformerLayersPerBlock)]
        if let numAttentionHeads { perBlock.append(("num_attention_heads", numAttentionHeads)) }
        if let reverseTransformerLayersPerBlock { perBlock.append(("reverse_transformer_layers_per_block", .list(reverseTransformerLayersPerBlock))) }
        for (key, v) in perBlock {
            if case .list(let l) = v, l.count != n { try fail("\(key) has \(l.count) entries, expected \(n) (one per block)") }
        }
        if case .list = layersPerBlock { try fail("layers_per_block: per-block lists are not supported") }
        if case .list = crossAttentionDim { try fail("cross_attention_dim: per-block lists are not supported") }
        try check("in_channels", inChannels, in: 1...Self.maxChannels)
        try check("out_channels", outChannels, in: 1...Self.maxChannels)
        try check("layers_per_block", layersPerBlock, in: 1...Self.maxLayers)
        try check("cross_attention_dim", crossAttentionDim, in: 1...Self.maxChannels)
        try check("attention_head_dim", attentionHeadDim, in: 1...Self.maxChannels)
        if let numAttentionHeads { try check("num_attention_heads", numAttentionHeads, in: 1...Self.maxChannels) }
        try check("transformer_layers_per_block", transformerLayersPerBlock, in: 1...Self.maxLayers)
        if let r = reverseTransformerLayersPerBlock { try check("reverse_transformer_layers_per_block", .list(r), in: 1...Self.maxLayers) }
        try check("norm_num_groups", normNumGroups, in: 1...Self.maxChannels)
        for (i, c) in blockOutChannels.enumerated() where c % normNumGroups != 0 {
            try fail("block_out_channels[\(i)] = \(c) is not divisible by norm_num_groups \(normNumGroups)")
        }
        if !(normEps > 0) || !normEps.isFinite { try fail("norm_eps must be a positive finite number, got \(normEps)") }
        for (key, k) in [("conv_in_kernel", convInKernel), ("conv_out_kernel", convOutKernel)] {
            try check(key, k, in: 1...Self.maxKernel)
            if k % 2 == 0 { try fail("\(key) must be odd (a centred kernel keeps the latent size), got \(k)") }
        }
        // diffusers pads asymmetrically for 0 (F.pad(0, 1, 0, 1)); this port pads symmetrically.
        try check("downsample_padding", downsamplePadding, in: 1...3)
        if let s = sampleSize { try check("sample_size", s, in: 1...Self.maxSampleSize) }

        // Attention: each level with attention (and the mid block, at the last level) splits its
        // channels evenly into heads.
        let heads = headsPerBlock
        let headsKey = numAttentionHeads != nil ? "num_attention_heads" : "attention_head_dim"
        func checkHeads(_ level: Int, _ where_: String) throws {
            let c = blockOutChannels[level], h = heads[level]
            if c % h != 0 {
                try fail("\(headsKey): \(h) heads do not divide the \(c) channels of \(where_) (block_out_channels[\(level)])")
            }
        }
        for (i, t) in downBlockTypes.enumerated() where t == "CrossAttnDownBlock2D" { try checkHeads(i, "down block \(i)") }
        for (i, t) in upBlockTypes.enumerated() where t == "CrossAttnUpBlock2D" { try checkHeads(n - 1 - i, "up block \(i)") }
        try checkHeads(n - 1, "the mid block")

        // Sinusoidal embeddings divide by (dim / 2 - freq_shift).
        var halves = [blockOutChannels[0] / 2]
        if let t = additionEmbedType, t != "text_time" { try fail("addition_embed_type: unsupported '\(t)' (supported: text_time or null)") }
        if additionEmbedType == "text_time" {
            guard let timeDim = additionTimeEmbedDim, let projDim = projectionClassEmbeddingsInputDim else {
                try fail("addition_embed_type 'text_time' needs addition_time_embed_dim and projection_class_embeddings_input_dim")
            }
            try check("addition_time_embed_dim", timeDim, in: 1...Self.maxChannels)
            try check("projection_class_embeddings_input_dim", projDim, in: (6 * timeDim + 1)...(6 * timeDim + Self.maxChannels))
            halves.append(timeDim / 2)
        }
        let smallestHalf = max(halves.min()!, 1)
        if freqShift < 0 || freqShift >= smallestHalf {
            try fail("freq_shift must be in 0...\(smallestHalf - 1) (below half the timestep embedding width), got \(freqShift)")
        }
        if classEmbedType != nil { try fail("class_embed_type: unsupported '\(classEmbedType!)'") }
        if timeEmbeddingType != "positional" { try fail("time_embedding_type: unsupported '\(timeEmbeddingType)'") }
        // get_guidance_scale_embedding divides by (dim / 2 - 1).
        if let d = timeCondProjDim { try check("time_cond_proj_dim", d, in: 4...Self.maxChannels) }
        if resnetTimeScaleShift != "default" { try fail("resnet_time_scale_shift: unsupported '\(resnetTimeScaleShift)'") }
        if actFn != "silu" { try fail("act_fn: unsupported '\(actFn)'") }
        if onlyCrossAttention || dualCrossAttention { try fail("only_cross_attention / dual_cross_attention are not supported") }
        if encoderHidDimType != nil { try fail("encoder_hid_dim_type: unsupported '\(encoderHidDimType!)'") }
        if attentionType != "default" { try fail("attention_type: unsupported '\(attentionType)'") }
        if centerInputSample { try fail("center_input_sample: unsupported true") }
        if midBlockScaleFactor != 1 { try fail("mid_block_scale_factor: unsupported \(midBlockScaleFactor) (supported: 1)") }
        if resnetOutScaleFactor != 1 { try fail("resnet_out_scale_factor: unsupported \(resnetOutScaleFactor) (supported: 1)") }
        if upcastAttention == true { /* fp32 attention already: upcasting is a no-op here */ }
    }

    /// Heads per level: diffusers' `num_attention_heads or attention_head_dim` (the latter is a
    /// historical misnomer and holds the head count).
    public var headsPerBlock: [Int] { (numAttentionHeads ?? attentionHeadDim).perBlock(blockOutChannels.count) }
    public var layersPerBlockValue: Int { layersPerBlock.perBlock(1)[0] }
    public var crossAttentionDimValue: Int { crossAttentionDim.perBlock(1)[0] }
    public var transformerDepths: [Int] { transformerLayersPerBlock.perBlock(blockOutChannels.count) }
    public var timeEmbedDim: Int { blockOutChannels[0] * 4 }
    public var hasTextTimeEmbedding: Bool { additionEmbedType == "text_time" }
}
