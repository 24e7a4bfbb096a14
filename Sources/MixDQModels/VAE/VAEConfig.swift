import Foundation

/// diffusers `AutoencoderKL` config (`vae/config.json`).
///
/// Keys that fix the architecture are required; the rest take diffusers' defaults (sdxl-turbo's file
/// omits `shift_factor`, `use_quant_conv`, ... and relies on them). Values this implementation does not
/// build are rejected with the key named.
public struct VAEConfig: Decodable, Sendable {
    public var inChannels: Int
    public var outChannels: Int
    public var latentChannels: Int
    public var blockOutChannels: [Int]
    public var downBlockTypes: [String]
    public var upBlockTypes: [String]
    public var layersPerBlock: Int
    public var normNumGroups: Int
    public var actFn: String
    public var sampleSize: Int?
    /// Scheduler latents are divided by this before decoding (SD1.x default 0.18215; SDXL 0.13025).
    public var scalingFactor: Float
    /// Parsed for completeness; StableDiffusionXLPipeline does not apply it (see `AutoencoderKLDecoder.decode`).
    public var shiftFactor: Float?
    public var latentsMean: [Float]?
    public var latentsStd: [Float]?
    public var forceUpcast: Bool
    public var useQuantConv: Bool
    public var usePostQuantConv: Bool
    public var midBlockAddAttention: Bool

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", latentChannels = "latent_channels"
        case blockOutChannels = "block_out_channels", downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
        case layersPerBlock = "layers_per_block", normNumGroups = "norm_num_groups", actFn = "act_fn"
        case sampleSize = "sample_size", scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case latentsMean = "latents_mean", latentsStd = "latents_std", forceUpcast = "force_upcast"
        case useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try c.decode(Int.self, forKey: .inChannels)
        outChannels = try c.decode(Int.self, forKey: .outChannels)
        latentChannels = try c.decode(Int.self, forKey: .latentChannels)
        blockOutChannels = try c.decode([Int].self, forKey: .blockOutChannels)
        downBlockTypes = try c.decode([String].self, forKey: .downBlockTypes)
        upBlockTypes = try c.decode([String].self, forKey: .upBlockTypes)
        layersPerBlock = try c.decode(Int.self, forKey: .layersPerBlock)
        normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? 32
        actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? "silu"
        // sample_size may be an int or a pair; only tiling uses it, so a pair is read as absent.
        sampleSize = try? c.decodeIfPresent(Int.self, forKey: .sampleSize)
        scalingFactor = try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 0.18215
        shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor)
        latentsMean = try c.decodeIfPresent([Float].self, forKey: .latentsMean)
        latentsStd = try c.decodeIfPresent([Float].self, forKey: .latentsStd)
        forceUpcast = try c.decodeIfPresent(Bool.self, forKey: .forceUpcast) ?? true
        useQuantConv = try c.decodeIfPresent(Bool.self, forKey: .useQuantConv) ?? true
        usePostQuantConv = try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConv) ?? true
        midBlockAddAttention = try c.decodeIfPresent(Bool.self, forKey: .midBlockAddAttention) ?? true
        try validate()
    }

    /// Reads `vae/config.json`; errors name the file and the key.
    public static func load(_ url: URL) throws -> VAEConfig {
        try ModelConfigError.decode(VAEConfig.self, from: url)
    }

    public static let supportedUpBlocks: Set<String> = ["UpDecoderBlock2D"]
    public static let supportedDownBlocks: Set<String> = ["DownEncoderBlock2D"]

    /// Rejects what this implementation does not build, naming the key (the error path carries it).
    func validate() throws {
        func fail(_ key: CodingKeys, _ m: String) throws -> Never {
            throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: m))
        }
        let n = blockOutChannels.count
        if n == 0 { try fail(.blockOutChannels, "is empty") }
        if upBlockTypes.count != n { try fail(.upBlockTypes, "has \(upBlockTypes.count) entries, block_out_channels \(n)") }
        if downBlockTypes.count != n { try fail(.downBlockTypes, "has \(downBlockTypes.count) entries, block_out_channels \(n)") }
        for t in upBlockTypes where !Self.supportedUpBlocks.contains(t) {
            try fail(.upBlockTypes, "unknown block type '\(t)' (supported: UpDecoderBlock2D)")
        }
        for t in downBlockTypes where !Self.supportedDownBlocks.contains(t) {
            try fail(.downBlockTypes, "unknown block type '\(t)' (supported: DownEncoderBlock2D)")
        }
        // Bounds as UNetConfig's: far above any real VAE, low enough that no size built from them overflows.
        if n > UNetConfig.maxLevels { try fail(.blockOutChannels, "has \(n) levels, at most \(UNetConfig.maxLevels) are supported") }
        for (key, v) in [(CodingKeys.inChannels, inChannels), (.outChannels, outChannels), (.latentChannels, latentChannels)]
        where !(1...UNetConfig.maxChannels).contains(v) {
            try fail(key, "must be in 1...\(UNetConfig.maxChannels), got \(v)")
        }
        for c in blockOutChannels where !(1...UNetConfig.maxChannels).contains(c) {
            try fail(.blockOutChannels, "entry \(c) is not in 1...\(UNetConfig.maxChannels)")
        }
        if !(1...UNetConfig.maxLayers).contains(layersPerBlock) {
            try fail(.layersPerBlock, "must be in 1...\(UNetConfig.maxLayers), got \(layersPerBlock)")
        }
        if let s = sampleSize, !(1...8 * UNetConfig.maxSampleSize).contains(s) {
            try fail(.sampleSize, "must be in 1...\(8 * UNetConfig.maxSampleSize), got \(s)")
        }
        // diffusers' get_activation maps "swish" and "silu" to the same nn.SiLU.
        if actFn != "silu" && actFn != "swish" { try fail(.actFn, "unsupported '\(actFn)' (supported: silu)") }
        for ch in blockOutChannels where normNumGroups <= 0 || ch % normNumGroups != 0 {
            try fail(.normNumGroups, "\(normNumGroups) does not divide block_out_channels entry \(ch)")
        }
        if scalingFactor == 0 || !scalingFactor.isFinite { try fail(.scalingFactor, "must be finite and non-zero") }
        if (latentsMean == nil) != (latentsStd == nil) {
            try fail(latentsMean == nil ? .latentsMean : .latentsStd, "latents_mean and latents_std must be set together")
        }
        if let m = latentsMean, !m.allSatisfy(\.isFinite) { try fail(.latentsMean, "holds a non-finite value") }
        if let s = latentsStd, !s.allSatisfy({ $0.isFinite && $0 != 0 }) { try fail(.latentsStd, "holds a zero or non-finite value") }
        if let m = latentsMean, m.count != latentChannels {
            try fail(.latentsMean, "has \(m.count) entries, latent_channels \(latentChannels)")
        }
        if let s = latentsStd, s.count != latentChannels {
            try fail(.latentsStd, "has \(s.count) entries, latent_channels \(latentChannels)")
        }
    }

    /// Every VAE GroupNorm (ResNets, mid attention, conv_norm_out) uses eps 1e-6 (hard-coded in diffusers).
    public static let normEps: Float = 1e-6
    /// Spatial upsampling factor of the decoder: 2 per up block but the last.
    public var scaleFactor: Int { 1 << (blockOutChannels.count - 1) }
}
