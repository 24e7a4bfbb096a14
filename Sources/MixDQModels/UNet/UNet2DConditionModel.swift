import Foundation
import MixDQCompute

/// What one UNet call takes, in PyTorch layouts.
public struct UNetInputs {
    /// Latent `[B, C, h, w]` (NCHW).
    public var sample: Tensor
    /// One timestep per sample (a single value is broadcast).
    public var timesteps: [Float]
    /// Text context `[B, M, cross_attention_dim]`.
    public var encoderHiddenStates: Tensor
    /// SDXL only: pooled text `[B, D]` and `time_ids` `[B, 6]`.
    public var textEmbeds: Tensor?
    public var timeIds: Tensor?
    /// UNets with `time_cond_proj_dim` only (LCM-distilled): diffusers' `timestep_cond` `[B, time_cond_proj_dim]`,
    /// the guidance-scale embedding; optional, as in diffusers.
    public var timestepCond: Tensor?

    public init(sample: Tensor, timesteps: [Float], encoderHiddenStates: Tensor, textEmbeds: Tensor? = nil, timeIds: Tensor? = nil,
                timestepCond: Tensor? = nil) {
        self.sample = sample; self.timesteps = timesteps; self.encoderHiddenStates = encoderHiddenStates
        self.textEmbeds = textEmbeds; self.timeIds = timeIds; self.timestepCond = timestepCond
    }
}

public struct UNetInputError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// diffusers `UNet2DConditionModel` built from its config, for SDXL (text_time added embedding,
/// linear projections) and SD1.5-style models.
///
/// Activations are NHWC inside; inputs and outputs are NCHW like diffusers.
public final class UNet2DConditionModel {
    public let config: UNetConfig
    public let registry: LayerRegistry
    let convIn: Conv2d
    let timeProj: SinusoidalEmbedding
    let timeEmbedding: TimestepEmbedding
    let addTimeProj: SinusoidalEmbedding?
    let addEmbedding: TimestepEmbedding?
    let downBlocks: [UNetDownBlock]
    let midBlock: UNetMidBlock2DCrossAttn
    let upBlocks: [UNetUpBlock]
    let convNormOut: GroupNorm
    let convOut: Conv2d

    /// `packForInference`: FP-only use (no quantization later), weights packed once for speed.
    /// `kernelFactory`: quantized layers built as they load (a deployable quantized UNet).
    /// `attentionPrecision`: the attention matmuls' precision when it differs from the dense layers'.
    public init(config: UNetConfig, weights: WeightSource, precision: Precision = .fp32, attentionPrecision: Precision? = nil,
                packForInference: Bool = false, kernelFactory: LayerKernelFactory? = nil) throws {
        self.config = config
        let root = ModuleLoader(weights: weights, precision: precision, attentionPrecision: attentionPrecision,
                                packForInference: packForInference, kernelFactory: kernelFactory)
        registry = root.registry
        let ch = config.blockOutChannels
        let groups = config.normNumGroups, eps = config.normEps
        let temb = config.timeEmbedDim
        let ctx = config.crossAttentionDimValue
        let heads = config.headsPerBlock, depths = config.transformerDepths
        let layers = config.layersPerBlockValue

        convIn = try root.conv("conv_in", in: config.inChannels, out: ch[0], kernel: config.convInKernel,
                               padding: (config.convInKernel - 1) / 2)
        timeProj = SinusoidalEmbedding(dim: ch[0], flipSinToCos: config.flipSinToCos, freqShift: config.freqShift)
        timeEmbedding = try TimestepEmbedding(root.child("time_embedding"), in: ch[0], out: temb, condProjDim: config.timeCondProjDim)
        if config.hasTextTimeEmbedding {
            addTimeProj = SinusoidalEmbedding(dim: config.additionTimeEmbedDim!, flipSinToCos: config.flipSinToCos,
                                              freqShift: config.freqShift)
            addEmbedding = try TimestepEmbedding(root.child("add_embedding"), in: config.projectionClassEmbeddingsInputDim!, out: temb)
        } else {
            addTimeProj = nil
            addEmbedding = nil
        }

        var down: [UNetDownBlock] = []
        var out = ch[0]
        for (i, type) in config.downBlockTypes.enumerated() {
            let input = out
            out = ch[i]
            down.append(try UNetDownBlock(root.child("down_blocks.\(i)"), type: type, in: input, out: out, layers: layers,
                                          timeEmbedDim: temb, groups: groups, eps: eps, heads: heads[i], depth: depths[i],
                                          contextDim: ctx, linearProjection: config.useLinearProjection,
                                          addDownsample: i < ch.count - 1, downsamplePadding: config.downsamplePadding))
        }
        downBlocks = down
        midBlock = try UNetMidBlock2DCrossAttn(root.child("mid_block"), channels: ch.last!, timeEmbedDim: temb, groups: groups,
                                               eps: eps, heads: heads.last!, depth: depths.last!, contextDim: ctx,
                                               linearProjection: config.useLinearProjection)
        // The up path mirrors the down path: channels, heads and depths reversed.
        let rch = Array(ch.reversed()), rheads = Array(heads.reversed())
        let rdepths = config.reverseTransformerLayersPerBlock ?? Array(depths.reversed())
        var up: [UNetUpBlock] = []
        var prevOut = rch[0]
        for (i, type) in config.upBlockTypes.enumerated() {
            let outCh = rch[i]
            let inCh = rch[min(i + 1, rch.count - 1)]
            up.append(try UNetUpBlock(root.child("up_blocks.\(i)"), type: type, in: inCh, prevOut: prevOut, out: outCh,
                                      layers: layers + 1, timeEmbedDim: temb, groups: groups, eps: eps, heads: rheads[i],
                                      depth: rdepths[i], contextDim: ctx, linearProjection: config.useLinearProjection,
                                      addUpsample: i < rch.count - 1))
            prevOut = outCh
        }
        upBlocks = up
        convNormOut = try root.groupNorm("conv_norm_out", groups: groups, channels: ch[0], eps: eps)
        convOut = try root.conv("conv_out", in: ch[0], out: config.outChannels, kernel: config.convOutKernel,
                                padding: (config.convOutKernel - 1) / 2)
        try weights.finish()
    }

    /// Checks input shapes against the config, naming the tensor at fault.
    public func validate(_ inputs: UNetInputs) throws {
        let s = inputs.sample.shape
        // Empty batches or maps would reach oneDNN as zero-sized primitives (a fatal error there).
        guard s.count == 4, s[1] == config.inChannels, s[0] > 0, s[2] > 0, s[3] > 0 else {
            throw UNetInputError(message: "input 'sample' has shape \(s), expected [B, \(config.inChannels), h, w] with B, h, w > 0")
        }
        let b = s[0]
        let e = inputs.encoderHiddenStates.shape
        guard e.count == 3, e[0] == b, e[1] > 0, e[2] == config.crossAttentionDimValue else {
            throw UNetInputError(message: "input 'encoder_hidden_states' has shape \(e), expected [\(b), tokens, \(config.crossAttentionDimValue)]")
        }
        guard inputs.timesteps.count == 1 || inputs.timesteps.count == b else {
            throw UNetInputError(message: "input 'timestep' has \(inputs.timesteps.count) values, expected 1 or \(b)")
        }
        if let cond = inputs.timestepCond {
            guard let dim = config.timeCondProjDim else {
                throw UNetInputError(message: "input 'timestep_cond' given, but the UNet has no time_cond_proj_dim")
            }
            guard cond.shape == [b, dim] else {
                throw UNetInputError(message: "input 'timestep_cond' has shape \(cond.shape), expected [\(b), \(dim)]")
            }
        }
        if config.hasTextTimeEmbedding {
            let timeDim = config.additionTimeEmbedDim!
            let textDim = config.projectionClassEmbeddingsInputDim! - 6 * timeDim
            guard let t = inputs.textEmbeds, t.shape == [b, textDim] else {
                throw UNetInputError(message: "input 'text_embeds' has shape \(inputs.textEmbeds?.shape.description ?? "none"), expected [\(b), \(textDim)]")
            }
            guard let ids = inputs.timeIds, ids.shape == [b, 6] else {
                throw UNetInputError(message: "input 'time_ids' has shape \(inputs.timeIds?.shape.description ?? "none"), expected [\(b), 6]")
            }
        }
    }

    /// Runs the UNet. `trace` receives named intermediates (NCHW for feature maps), for parity tests.
    public func callAsFunction(_ inputs: UNetInputs, trace: ((String, Tensor) throws -> Void)? = nil) throws -> Tensor {
        try validate(inputs)
        // 1-4. time embedding (+ SDXL's text_time embedding)
        let emb = try embedding(inputs, trace: trace)

        // 5-8. down path
        let context = inputs.encoderHiddenStates
        var h = try convIn(FeatureMap.fromNCHW(inputs.sample))
        try trace?("conv_in", h.toNCHW())
        var skips: [FeatureMap] = [h]
        for block in downBlocks {
            let (out, pushed) = try block(h, emb: emb, context: context)
            h = out
            skips.append(contentsOf: pushed)
        }
        if let trace { for (i, s) in skips.enumerated() { try trace("down_block_res.\(i)", s.toNCHW()) } }

        // 9. mid
        h = try midBlock(h, emb: emb, context: context)
        try trace?("mid", h.toNCHW())

        // 10-12. up path; upsamplers take the next skip's size when the latent is not a multiple of 2^levels
        for (i, block) in upBlocks.enumerated() {
            h = try block(h, skips: &skips, emb: emb, context: context, upsampleSize: upsampleSize(block, skips: skips))
            try trace?("up_block.\(i)", h.toNCHW())
        }

        // 13. out
        let out = try convOut(convNormOut(h, silu: true))
        return out.toNCHW()
    }

    /// Every Conv2d and Linear in module order (MixDQ's quantization sites).
    public var layers: [WeightLayer] { registry.layers }
    public var parameterCount: Int { registry.parameterCount }
}
