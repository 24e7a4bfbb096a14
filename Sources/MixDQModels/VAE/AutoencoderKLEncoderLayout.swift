import MixDQCompute

/// The key names and shapes of AutoencoderKL's encoding half (`encoder.*`, `quant_conv.*`) for a config.
///
/// There is no encoder forward (text-to-image never encodes). This exists so that a model written by this
/// program (e.g. the embedded default model) is a complete diffusers `vae/` folder that `from_pretrained`
/// loads without missing keys: a recording `WeightSource` passed through `requestAll` captures every tensor.
/// Checked against diffusers 0.42.1 for the tiny and the real SDXL config (Tests/Fixtures/vae_tiny/encoder_layout.json).
public enum AutoencoderKLEncoderLayout {
    /// Requests every encoder tensor with its shape from `loader` (the VAE's root loader), in forward order.
    /// Builds no layers.
    public static func requestAll(_ loader: ModuleLoader, config: VAEConfig) throws {
        let ch = config.blockOutChannels
        let enc = loader.child("encoder")
        try conv(enc, "conv_in", in: config.inChannels, out: ch[0], kernel: 3)
        // DownEncoderBlock2D: layers_per_block resnets, then a stride-2 conv (diffusers' padding 0 + asymmetric
        // pad; same weights) on all but the last level.
        var out = ch[0]
        for i in 0..<ch.count {
            let input = out
            out = ch[i]
            let block = enc.child("down_blocks.\(i)")
            for j in 0..<config.layersPerBlock {
                try resnet(block.child("resnets.\(j)"), in: j == 0 ? input : out, out: out)
            }
            if i < ch.count - 1 { try conv(block.child("downsamplers.0"), "conv", in: out, out: out, kernel: 3) }
        }
        let c = ch.last!
        let mid = enc.child("mid_block")
        try resnet(mid.child("resnets.0"), in: c, out: c)
        if config.midBlockAddAttention {
            let attn = mid.child("attentions.0")
            try norm(attn, "group_norm", channels: c)
            for name in ["to_q", "to_k", "to_v", "to_out.0"] {
                _ = try attn.tensor("\(name).weight", shape: [c, c])
                _ = try attn.tensor("\(name).bias", shape: [c])
            }
        }
        try resnet(mid.child("resnets.1"), in: c, out: c)
        try norm(enc, "conv_norm_out", channels: c)
        // double_z: mean and log-variance.
        try conv(enc, "conv_out", in: c, out: 2 * config.latentChannels, kernel: 3)
        if config.useQuantConv {
            try conv(loader, "quant_conv", in: 2 * config.latentChannels, out: 2 * config.latentChannels, kernel: 1)
        }
    }

    /// Every encoder tensor as (key, shape), in request order.
    public static func tensorShapes(config: VAEConfig) throws -> [(key: String, shape: [Int])] {
        let recorder = ShapeRecorder()
        try requestAll(ModuleLoader(weights: recorder), config: config)
        return recorder.requests
    }

    private static func conv(_ l: ModuleLoader, _ name: String, in cin: Int, out cout: Int, kernel k: Int) throws {
        _ = try l.tensor("\(name).weight", shape: [cout, cin, k, k])
        _ = try l.tensor("\(name).bias", shape: [cout])
    }

    private static func norm(_ l: ModuleLoader, _ name: String, channels: Int) throws {
        _ = try l.tensor("\(name).weight", shape: [channels])
        _ = try l.tensor("\(name).bias", shape: [channels])
    }

    /// ResnetBlock2D without time embedding (the same keys `ResnetBlock2D(timeEmbedDim: nil)` reads).
    private static func resnet(_ l: ModuleLoader, in cin: Int, out cout: Int) throws {
        try norm(l, "norm1", channels: cin)
        try conv(l, "conv1", in: cin, out: cout, kernel: 3)
        try norm(l, "norm2", channels: cout)
        try conv(l, "conv2", in: cout, out: cout, kernel: 3)
        if cin != cout { try conv(l, "conv_shortcut", in: cin, out: cout, kernel: 1) }
    }

    /// Answers every request with an empty tensor of the right shape, remembering key and shape.
    private final class ShapeRecorder: WeightSource {
        var requests: [(key: String, shape: [Int])] = []
        func tensor(_ key: String, shape: [Int]) throws -> Tensor {
            requests.append((key, shape))
            return Tensor(uninitializedShape: shape)   // never read; large ones are not even touched
        }
        func contains(_ key: String) -> Bool { true }
        func finish() throws {}
    }
}
