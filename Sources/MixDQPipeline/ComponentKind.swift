import Foundation

/// Which pipeline component a `config.json` describes, read from the markers diffusers and
/// transformers write (`_class_name`, `architectures`, `model_type`), so a component folder is
/// recognised whatever it is called.
enum ComponentKind: Equatable, CustomStringConvertible {
    case unet, vae, textEncoder, textEncoderWithProjection

    /// The kind a pipeline's component folder name stands for (nil: a folder without config.json).
    init?(componentName: String) {
        switch componentName {
        case "unet": self = .unet
        case "vae": self = .vae
        case "text_encoder": self = .textEncoder
        case "text_encoder_2": self = .textEncoderWithProjection
        default: return nil
        }
    }

    /// nil when the file is unreadable, not a JSON object, or carries no known marker.
    init?(configAt url: URL) {
        guard let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        switch object["_class_name"] as? String {
        case "UNet2DConditionModel": self = .unet; return
        case "AutoencoderKL": self = .vae; return
        default: break
        }
        let architectures = object["architectures"] as? [String] ?? []
        if architectures.contains("CLIPTextModelWithProjection") { self = .textEncoderWithProjection; return }
        if architectures.contains("CLIPTextModel") || object["model_type"] as? String == "clip_text_model" {
            self = .textEncoder; return
        }
        return nil
    }

    var description: String {
        switch self {
        case .unet: return "a UNet2DConditionModel (unet)"
        case .vae: return "an AutoencoderKL (vae)"
        case .textEncoder: return "a CLIPTextModel (text_encoder)"
        case .textEncoderWithProjection: return "a CLIPTextModelWithProjection (text_encoder_2)"
        }
    }
}
