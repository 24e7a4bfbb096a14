import Foundation

/// The deployable quantized UNet: a diffusers-style `unet/` folder (config.json +
/// diffusion_pytorch_model.safetensors) whose quantized layers hold packed integer weight codes and
/// their quantization parameters instead of fp32 weights. `infer` and `fp-infer` load it with no fp32
/// weight of a quantized layer ever read.
///
/// safetensors entries, per quantized layer `<p>` (a diffusers module path):
///   `<p>.weight_codes`        U8  [bytes]         codes packed at rest (`rest_bits` 2, 4 or 8; layout of
///                                                  `PackedWeightCodes`), OIHW / [out, in] order
///   `<p>.weight_scales`       F32 [parts, out]    per-output-channel Δw (2 parts for split shortcuts)
///   `<p>.input_scales`        F32 [parts]         per-tensor Δx          (W·A layers only)
///   `<p>.input_zero_points`   F32 [parts]         zero points in 0...2^a - 1 (W·A layers only)
///   `<p>.token0_inputs`       F32 [E, in]         BOS-aware K/V: token-0 rows the table answers ...
///   `<p>.token0_outputs`      F32 [E, out]        ... and their FP outputs
///   `<p>.bias`                F32 [out]           as in diffusers
/// FP layers (act-protected) keep `<p>.weight` F32, and every other tensor (norms, embeddings) is as
/// in the source. Header metadata: `format` = `mixdq-quantized-unet/1`, `layers` = JSON
/// `{"<p>": {"weight_bits": b, "rest_bits": r, "activation_bits": a (2...8) or 0 (A16)}}`, plus provenance;
/// `lora` = the identity of a LoRA fused before quantization (`LoRAWeights.identity`), which loading
/// the UNet then requires again (for the text encoders).
public enum QuantizedUNetFormat {
    public static let format = "mixdq-quantized-unet/1"
    public static let loraKey = "lora"
    public static let weightsFile = "diffusion_pytorch_model.safetensors"

    /// What one quantized layer is: its bit widths.
    public struct LayerBits: Codable, Equatable, Sendable {
        public var weightBits: Int
        public var restBits: Int
        /// 2...8 for integer layers (MixDQ uses 8 and 4); 0 for weight-only (A16) layers.
        public var activationBits: Int
        enum CodingKeys: String, CodingKey {
            case weightBits = "weight_bits", restBits = "rest_bits", activationBits = "activation_bits"
        }
    }

    /// The packed width codes of `bits` are stored at: the smallest of 2, 4, 8 that holds them.
    public static func restBits(forWeightBits bits: Int) -> Int? {
        guard (2...8).contains(bits) else { return nil }
        return bits <= 2 ? 2 : bits <= 4 ? 4 : 8
    }

    public struct Invalid: Error, CustomStringConvertible, LocalizedError {
        public let description: String
        public init(_ description: String) { self.description = description }
        public var errorDescription: String? { description }
    }
}
