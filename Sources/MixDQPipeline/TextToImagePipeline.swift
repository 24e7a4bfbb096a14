import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels

/// What the UNet saw and produced at one denoising step (for calibration data).
public struct UNetStepRecord {
    public let step: Int
    public let timestep: Float
    /// Scaled latent input `[B', 4, h, w]` (B' = 2B with CFG: [uncond, cond]).
    public let sample: Tensor
    public let context: Tensor
    public let textEmbeds: Tensor?
    public let timeIds: Tensor?
    /// The guidance-scale embedding of UNets with `time_cond_proj_dim` (`[B', D]`), else nil.
    public let timestepCond: Tensor?
    /// UNet output before guidance and the scheduler step.
    public let output: Tensor
}

/// diffusers' `StableDiffusionXLPipeline` and `StableDiffusionPipeline` (SD1.x/2.x: one text encoder,
/// no added embeddings): tokenize, encode, denoise with the scheduler, decode with the VAE.
///
/// Components load lazily from the model folder; the text encoders are freed right after encoding
/// (`releaseTextEncoders`) so that the UNet and VAE run without them in memory.
public final class TextToImagePipeline {
    public let folder: ModelFolder
    public let precision: Precision
    /// The text encoders' precision: `precision`, except fp32 beside a deployable quantized UNet,
    /// whose BOS-aware K/V recognises token 0 of the context by its exact fp32 value.
    public var textEncoderPrecision: Precision
    public let isSDXL: Bool
    /// The unconditional rows of classifier-free guidance (zeros, or the encoded empty prompt).
    public let negativeConditioning: NegativeConditioning
    private var negativeEmbedding: PromptEmbeddings?
    private var tokenizers: [CLIPTokenizer]?
    private var textEncoders: [CLIPTextModel]?
    private var unetStorage: UNet2DConditionModel?
    private var vaeStorage: AutoencoderKLDecoder?
    /// Called once when the UNet is loaded (quantized inference installs its simulator here).
    public var configureUNet: ((UNet2DConditionModel) throws -> Void)?
    /// The convolution algorithm the UNet and the VAE decoder are loaded with (nil:
    /// `ConvolutionAlgorithm.current`); `planConvolutions` sets them for a job.
    public private(set) var unetConvolutions: ConvolutionAlgorithm?
    public private(set) var vaeConvolutions: ConvolutionAlgorithm?
    private let unetConfig: UNetConfig

    public init(folder: ModelFolder, precision: Precision = .fp32) throws {
        self.folder = folder
        self.precision = precision
        // A missing or broken UNet file is reported when the UNet loads, naming it; here it only decides this.
        textEncoderPrecision = ((try? folder.quantizedUNetHeader()) ?? nil) != nil ? .fp32 : precision
        let unetDir = try folder.component("unet")
        _ = try folder.component("vae")
        // SDXL is told by the UNet (text_time conditioning), not by which folders exist, so that a
        // missing text_encoder_2 is reported as such instead of as a context-width mismatch later.
        unetConfig = try UNetConfig.load(unetDir.appendingPathComponent("config.json"))
        isSDXL = unetConfig.hasTextTimeEmbedding || (try? folder.component("text_encoder_2")) != nil
        for name in isSDXL ? ["text_encoder", "text_encoder_2"] : ["text_encoder"] { _ = try folder.component(name) }
        negativeConditioning = try NegativeConditioning.of(folder, isSDXL: isSDXL)
    }

    public var unet: UNet2DConditionModel {
        get throws {
            if let u = unetStorage { return u }
            // A UNet that gets configured (quantized) loads its dense layers in fp32: the quantizer reads
            // their fp32 weights and its backend builds the kernels in the precision it was asked for.
            // Attention runs in `precision` either way.
            let u = try ConvolutionAlgorithm.during(unetConvolutions ?? ConvolutionAlgorithm.current) {
                let u = try folder.loadUNet(precision: configureUNet == nil ? precision : .fp32, attentionPrecision: precision,
                                            packForInference: configureUNet == nil)
                try configureUNet?(u)
                return u
            }
            unetStorage = u
            return u
        }
    }

    public var vae: AutoencoderKLDecoder {
        get throws {
            if let v = vaeStorage { return v }
            let v = try ConvolutionAlgorithm.during(vaeConvolutions ?? ConvolutionAlgorithm.current) { try folder.loadVAEDecoder() }
            vaeStorage = v
            return v
        }
    }

    /// Chooses the UNet's and the VAE's convolution algorithm for a job of `images` images (see
    /// `WinogradPayback`); components already loaded keep theirs. Returns a line for the log.
    @discardableResult
    public func planConvolutions(images: Int, steps: Int, guidance: Float, height: Int, width: Int) -> String {
        let rows = Self.usesClassifierFreeGuidance(guidance, unetConfig) ? 2 : 1
        if unetStorage == nil {
            unetConvolutions = WinogradPayback.unet(forwards: images * steps, rows: rows, height: height, width: width)
        }
        if vaeStorage == nil { vaeConvolutions = WinogradPayback.vae(decodes: images, height: height, width: width) }
        func name(_ a: ConvolutionAlgorithm?) -> String {
            (a ?? ConvolutionAlgorithm.current) == .auto ? "Winograd where it applies" : "direct"
        }
        return "fp32 3x3 convolutions: UNet \(name(unetConvolutions)), VAE \(name(vaeConvolutions)) (\(images * steps) forward(s) of \(rows) row(s), \(images) decode(s) at \(width)x\(height); see WinogradPayback, \(ConvolutionAlgorithm.environmentVariable))"
    }

    public func releaseTextEncoders() { textEncoders = nil; MemoryAllocator.returnFreeMemory() }
    public func releaseUNet() { unetStorage = nil; MemoryAllocator.returnFreeMemory() }
    /// Whether the UNet is in memory (it loads on first use and again after `releaseUNet()`).
    public var isUNetLoaded: Bool { unetStorage != nil }

    /// The UNet's default image size: `sample_size * 8`.
    public var defaultSize: Int {
        get throws { (try UNetConfig.load(try folder.component("unet").appendingPathComponent("config.json")).sampleSize ?? 64) * 8 }
    }

    public func scheduler(steps: Int) throws -> any Scheduler {
        let url = try folder.file("scheduler", "scheduler_config.json")
        return try SchedulerConfig.load(from: url, overridingClass: folder.schedulerOverride).makeScheduler(numInferenceSteps: steps)
    }

    /// Tokenizes and encodes prompts: SDXL concatenates both encoders' penultimate hidden states
    /// and takes the pooled projection of the second; SD1.5 uses the last hidden state of one.
    /// The empty prompt's embedding is encoded too while the encoders are loaded, when it is the
    /// negative conditioning, so guidance works after `releaseTextEncoders()`.
    public func encode(_ prompts: [String]) throws -> PromptEmbeddings {
        let embeddings = try encodeLoaded(prompts)
        if negativeConditioning == .emptyPrompt, negativeEmbedding == nil { negativeEmbedding = try encodeLoaded([""]) }
        return embeddings
    }

    /// The unconditional rows for `embeddings` (one per row), as `negativeConditioning` says.
    public func negative(for embeddings: PromptEmbeddings) throws -> PromptEmbeddings {
        switch negativeConditioning {
        case .zeros:
            return embeddings.zeros()
        case .emptyPrompt:
            let negative = try negativeEmbedding ?? encodeLoaded([""])
            negativeEmbedding = negative
            return negative.repeated(embeddings.count)
        }
    }

    private func encodeLoaded(_ prompts: [String]) throws -> PromptEmbeddings {
        if tokenizers == nil {
            tokenizers = try (isSDXL ? ["tokenizer", "tokenizer_2"] : ["tokenizer"]).map {
                try CLIPTokenizer(folder: try folder.componentFolder($0))
            }
        }
        if textEncoders == nil {
            textEncoders = try (isSDXL ? ["text_encoder", "text_encoder_2"] : ["text_encoder"]).map {
                try folder.loadTextEncoder($0, precision: textEncoderPrecision)
            }
        }
        var parts: [Tensor] = []
        var pooled: Tensor?
        for (i, (tok, enc)) in zip(tokenizers!, textEncoders!).enumerated() {
            let ids = prompts.map { tok.encode($0) }
            if isSDXL {
                let out = try enc.encode(ids: ids, hiddenStateIndex: -2, includeLastHiddenState: i == 1)
                parts.append(out.hiddenState)
                if i == 1 { pooled = out.textEmbeds }
            } else {
                let out = try enc.encode(ids: ids, hiddenStateIndex: -1, includeLastHiddenState: true)
                parts.append(out.lastHiddenState!)
            }
        }
        return PromptEmbeddings(context: parts.count == 1 ? parts[0] : TextToImagePipeline.concatLastAxis(parts), pooled: pooled)
    }

    static func concatLastAxis(_ parts: [Tensor]) -> Tensor {
        let rows = parts[0].count / parts[0].shape.last!
        let widths = parts.map { $0.shape.last! }
        let total = widths.reduce(0, +)
        let out = Tensor(uninitializedShape: Array(parts[0].shape.dropLast()) + [total])
        for r in 0..<rows {
            var off = 0
            for (p, w) in zip(parts, widths) {
                (out.data + r * total + off).update(from: p.data + r * w, count: w)
                off += w
            }
        }
        return out
    }

    /// Denoises one batch and returns the final latents `[B, 4, h, w]`.
    /// `guidance > 1` enables classifier-free guidance (`negativeConditioning` for the unconditional
    /// rows), except for UNets with `time_cond_proj_dim`, which take the guidance scale as an
    /// embedding of `guidance - 1` instead (diffusers' StableDiffusion(XL)Pipeline).
    public func denoise(_ embeddings: PromptEmbeddings, noise: inout BatchNoise, steps: Int, guidance: Float,
                        height: Int, width: Int, record: ((UNetStepRecord) throws -> Void)? = nil) throws -> Tensor {
        let unet = try self.unet
        let scheduler = try self.scheduler(steps: steps)
        let b = embeddings.count
        var latents = Ops.scale(noise.randn([b, unet.config.inChannels, height / 8, width / 8]), by: scheduler.initNoiseSigma)
        let cfg = TextToImagePipeline.usesClassifierFreeGuidance(guidance, unet.config)
        let cond = cfg ? PromptEmbeddings.concat(try negative(for: embeddings), embeddings) : embeddings
        let rows = cond.count
        // torch.tensor(guidance_scale - 1): the subtraction in Python floats, then float32.
        let timestepCond = unet.config.timeCondProjDim.map {
            GuidanceScaleEmbedding.embedding(Array(repeating: Float(Double(guidance) - 1), count: rows), dim: $0)
        }
        var timeIds: Tensor? = nil
        if isSDXL {
            // add_time_ids = original size, crop top-left, target size.
            let one: [Float] = [Float(height), Float(width), 0, 0, Float(height), Float(width)]
            timeIds = Tensor(shape: [rows, 6], values: Array((0..<rows).map { _ in one }.joined()))
        }
        for (i, t) in scheduler.timesteps.enumerated() {
            let scaled = scheduler.scaleModelInput(latents, stepIndex: i)
            let input = cfg ? PromptEmbeddings.cat(scaled, scaled) : scaled
            let eps = try unet(UNetInputs(sample: input, timesteps: [t], encoderHiddenStates: cond.context,
                                          textEmbeds: cond.pooled, timeIds: timeIds, timestepCond: timestepCond))
            try NonFiniteValuesError.check(eps, "UNet output", step: i, timestep: t)
            try record?(UNetStepRecord(step: i, timestep: t, sample: input, context: cond.context, textEmbeds: cond.pooled,
                                       timeIds: timeIds, timestepCond: timestepCond, output: eps))
            var guided = eps
            if cfg {
                // eps = eps_u + g (eps_c - eps_u)
                let half = eps.count / 2
                guided = Tensor(uninitializedShape: [b] + eps.shape.dropFirst())
                for j in 0..<half {
                    let u = eps.data[j], c = eps.data[half + j]
                    guided.data[j] = u + guidance * (c - u)
                }
            }
            latents = scheduler.step(modelOutput: guided, stepIndex: i, sample: latents, noise: &noise)
            try NonFiniteValuesError.check(latents, "latent", step: i, timestep: t)
        }
        return latents
    }

    /// Whether a run with this guidance scale has unconditional rows: guidance > 1 on a UNet
    /// without a guidance embedding (diffusers' `do_classifier_free_guidance`).
    public static func usesClassifierFreeGuidance(_ guidance: Float, _ config: UNetConfig) -> Bool {
        guidance > 1 && config.timeCondProjDim == nil
    }

    /// Decodes latents to images.
    public func decode(_ latents: Tensor) throws -> [RGBImage] {
        let images = try vae.decode(latents: latents)
        try NonFiniteValuesError.check(images, "decoded image", step: nil, timestep: nil)
        return (0..<images.shape[0]).map { RGBImage.fromDecoded(images, index: $0) }
    }

    /// One image, computed on its own rows only (one row, two with CFG), from one prompt's
    /// embeddings and its own generator. oneDNN may pick other kernels, and so other summation
    /// orders, for other row counts; computing each image alone makes its bytes depend only on
    /// (model, prompt, seed, settings), never on how images are batched, sharded or resumed.
    /// `releasingUNet`: free the UNet between denoising and decoding (the last image of a process),
    /// so that the UNet and the VAE decode are not resident together.
    public func image(_ embedding: PromptEmbeddings, seed: UInt64, steps: Int, guidance: Float,
                      height: Int, width: Int, releasingUNet: Bool = false) throws -> RGBImage {
        var noise = BatchNoise(seeds: [seed])
        let latents = try denoise(embedding, noise: &noise, steps: steps, guidance: guidance, height: height, width: width)
        if releasingUNet { releaseUNet() }
        return try decode(latents)[0]
    }
}
