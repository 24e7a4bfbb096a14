import Foundation
import MixDQCompute

public struct VAEInputError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// The decoding half of diffusers `AutoencoderKL`: `post_quant_conv`, then `decoder.*`
/// (conv_in, mid block, up blocks, GroupNorm + SiLU + conv_out).
///
/// Runs in fp32 only: SDXL's VAE overflows fp16 (`force_upcast`, sdxl-architecture.md §9.6).
/// Activations are NHWC inside; inputs and outputs are NCHW like diffusers. Each stage's input is
/// dropped as soon as the next exists, so decoding to 512x512 holds a few 128-256 MB maps at a time.
public final class AutoencoderKLDecoder {
    public let config: VAEConfig
    public let registry: LayerRegistry
    let postQuantConv: Conv2d?
    let convIn: Conv2d
    let midBlock: VAEMidBlock
    let upBlocks: [UpDecoderBlock2D]
    let convNormOut: GroupNorm
    let convOut: Conv2d

    /// Key prefixes of the encoder half, which a full `vae/` checkpoint holds and the decoder never reads.
    public static let encoderKeyPrefixes = ["encoder.", "quant_conv."]

    /// Builds from any `WeightSource` holding AutoencoderKL keys (modern or legacy attention names;
    /// the encoder half may be present and is ignored). Throws on missing, misshapen or unknown tensors.
    public init(config: VAEConfig, weights: WeightSource, packForInference: Bool = false) throws {
        self.config = config
        let source = VAEWeightSource(weights, unusedPrefixes: Self.encoderKeyPrefixes)
        let root = ModuleLoader(weights: source, packForInference: packForInference)
        registry = root.registry
        let ch = config.blockOutChannels, groups = config.normNumGroups
        let latent = config.latentChannels

        postQuantConv = config.usePostQuantConv ? try root.conv("post_quant_conv", in: latent, out: latent, kernel: 1) : nil
        let dec = root.child("decoder")
        convIn = try dec.conv("conv_in", in: latent, out: ch.last!, kernel: 3, padding: 1)
        midBlock = try VAEMidBlock(dec.child("mid_block"), channels: ch.last!, groups: groups,
                                   addAttention: config.midBlockAddAttention)
        // Channels reversed; every block but the last doubles the resolution.
        let rch = Array(ch.reversed())
        var prevOut = rch[0]
        var up: [UpDecoderBlock2D] = []
        for i in 0..<rch.count {
            up.append(try UpDecoderBlock2D(dec.child("up_blocks.\(i)"), in: prevOut, out: rch[i],
                                           layers: config.layersPerBlock + 1, groups: groups,
                                           addUpsample: i < rch.count - 1))
            prevOut = rch[i]
        }
        upBlocks = up
        convNormOut = try dec.groupNorm("conv_norm_out", groups: groups, channels: ch[0], eps: VAEConfig.normEps)
        convOut = try dec.conv("conv_out", in: ch[0], out: config.outChannels, kernel: 3, padding: 1)
        try source.finish()
    }

    /// Scheduler latents `[B, latent_channels, h, w]` (NCHW) -> image `[B, out_channels, 8h, 8w]` (NCHW, about [-1, 1]).
    ///
    /// Unscales like StableDiffusionXLPipeline (diffusers 0.42.1): `z * latents_std / scaling_factor + latents_mean`
    /// when the config sets both, else `z / scaling_factor`. That pipeline never applies `shift_factor`, so neither
    /// does this. `trace` receives NCHW intermediates (see `decodeRaw`).
    public func decode(latents: Tensor, trace: ((String, Tensor) -> Void)? = nil) throws -> Tensor {
        try validate(latents, name: "latents")
        let (b, c, hw) = (latents.shape[0], latents.shape[1], latents.shape[2] * latents.shape[3])
        let z = Tensor(uninitializedShape: latents.shape)
        let sf = config.scalingFactor
        for i in 0..<b {
            for ch in 0..<c {
                let src = latents.data + (i * c + ch) * hw, dst = z.data + (i * c + ch) * hw
                if let mean = config.latentsMean, let std = config.latentsStd {
                    for p in 0..<hw { dst[p] = src[p] * std[ch] / sf + mean[ch] }
                } else {
                    for p in 0..<hw { dst[p] = src[p] / sf }
                }
            }
        }
        return try decodeRaw(z, trace: trace)
    }

    /// diffusers `AutoencoderKL.decode(z).sample`: no latent unscaling. `z` is `[B, latent_channels, h, w]` NCHW.
    /// `trace` receives `post_quant_conv`, `conv_in`, `mid`, `up_block.{i}` as NCHW copies, for parity tests.
    public func decodeRaw(_ z: Tensor, trace: ((String, Tensor) -> Void)? = nil) throws -> Tensor {
        try validate(z, name: "z")
        var h = FeatureMap.fromNCHW(z)                            // [B,h,w,4]
        if let postQuantConv {
            h = try postQuantConv(h)                                  // [B,h,w,4]
            trace?("post_quant_conv", h.toNCHW())
        }
        h = try convIn(h)                                             // [B,h,w,C_last]
        trace?("conv_in", h.toNCHW())
        h = try midBlock(h)                                           // [B,h,w,C_last]
        trace?("mid", h.toNCHW())
        for (i, block) in upBlocks.enumerated() {
            h = try block(h)                                          // [B,h*2^(i+1),w*2^(i+1),C] (last block: no upsample)
            trace?("up_block.\(i)", h.toNCHW())
        }
        h = try convOut(convNormOut(h, silu: true))                   // [B,8h,8w,3]
        return h.toNCHW()                                         // [B,3,8h,8w]
    }

    func validate(_ t: Tensor, name: String) throws {
        guard t.rank == 4, t.shape[1] == config.latentChannels, t.shape[0] > 0, t.shape[2] > 0, t.shape[3] > 0 else {
            throw VAEInputError("input '\(name)' has shape \(t.shape), expected [B, \(config.latentChannels), h, w]")
        }
    }

    /// Every Conv2d and Linear in module order.
    public var layers: [WeightLayer] { registry.layers }
    /// Parameters of the Conv2d and Linear layers (GroupNorm affine terms not included).
    public var parameterCount: Int { registry.parameterCount }
}
