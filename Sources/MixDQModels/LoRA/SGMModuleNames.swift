/// The SGM (Stability's generative-models / LDM) name of a diffusers UNet module.
///
/// kohya trains SDXL on the SGM UNet, so an SDXL kohya LoRA names its modules
/// `lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q` where diffusers says
/// `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`. The SGM UNet numbers its blocks
/// flat: `input_blocks.0` is `conv_in`, then each level's (resnet, attention) pairs and its
/// downsampler; `middle_block.0/1/2` is resnet, attention, resnet; `output_blocks` run over the up
/// levels with `layers_per_block + 1` pairs each, the upsampler after the level's last attention.
/// Resnets name their layers `in_layers.0/2`, `emb_layers.1`, `out_layers.0/3`, `skip_connection`;
/// the transformer inside an attention keeps diffusers' names.
public struct SGMModuleNames: Sendable {
    let layersPerBlock: Int
    let downHasAttention: [Bool]
    let upHasAttention: [Bool]

    public init(config: UNetConfig) {
        layersPerBlock = config.layersPerBlockValue
        downHasAttention = config.downBlockTypes.map { $0.hasPrefix("CrossAttn") }
        upHasAttention = config.upBlockTypes.map { $0.hasPrefix("CrossAttn") }
    }

    static let topLevel = ["conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
                           "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
                           "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0", "conv_out": "out.2"]
    static let resnetLayers = ["norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"]

    /// The SGM path of the module at diffusers `path` (dotted), or nil where SGM has no such module.
    public func sgmPath(_ path: String) -> String? {
        if let name = Self.topLevel[path] { return name }
        let parts = path.split(separator: ".").map(String.init)
        let pairs = layersPerBlock + 1
        func resnet(_ block: String, _ rest: ArraySlice<String>) -> String? {
            guard let first = rest.first, let layer = Self.resnetLayers[first], rest.count == 1 else { return nil }
            return "\(block).\(layer)"
        }
        func attention(_ block: String, _ rest: ArraySlice<String>) -> String? {
            rest.isEmpty ? nil : ([block] + rest).joined(separator: ".")
        }
        guard parts.count >= 4 else { return nil }
        switch parts[0] {
        case "down_blocks":
            guard let level = Int(parts[1]), level < downHasAttention.count, let index = Int(parts[3]) else { return nil }
            let rest = parts[4...]
            switch parts[2] {
            case "resnets" where index < layersPerBlock:
                return resnet("input_blocks.\(1 + level * pairs + index).0", rest)
            case "attentions" where index < layersPerBlock && downHasAttention[level]:
                return attention("input_blocks.\(1 + level * pairs + index).1", rest)
            case "downsamplers" where index == 0 && level + 1 < downHasAttention.count && Array(rest) == ["conv"]:
                return "input_blocks.\((level + 1) * pairs).0.op"
            default: return nil
            }
        case "mid_block":
            guard let index = Int(parts[2]) else { return nil }
            let rest = parts[3...]
            switch (parts[1], index) {
            case ("resnets", 0): return resnet("middle_block.0", rest)
            case ("attentions", 0): return attention("middle_block.1", rest)
            case ("resnets", 1): return resnet("middle_block.2", rest)
            default: return nil
            }
        case "up_blocks":
            guard let level = Int(parts[1]), level < upHasAttention.count, let index = Int(parts[3]) else { return nil }
            let rest = parts[4...]
            switch parts[2] {
            case "resnets" where index < pairs:
                return resnet("output_blocks.\(level * pairs + index).0", rest)
            case "attentions" where index < pairs && upHasAttention[level]:
                return attention("output_blocks.\(level * pairs + index).1", rest)
            case "upsamplers" where index == 0 && level + 1 < upHasAttention.count && Array(rest) == ["conv"]:
                return "output_blocks.\(level * pairs + layersPerBlock).\(upHasAttention[level] ? 2 : 1).conv"
            default: return nil
            }
        default:
            return nil
        }
    }
}
