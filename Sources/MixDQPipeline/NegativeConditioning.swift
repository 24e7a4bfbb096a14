import Foundation
import MixDQIO

/// What classifier-free guidance uses for the unconditional rows when no negative prompt is given,
/// as diffusers' pipelines decide it: `StableDiffusionXLPipeline` uses all-zero embeddings when its
/// `force_zeros_for_empty_prompt` (model_index.json; the class default is true) is set, and encodes
/// the empty prompt otherwise; `StableDiffusionPipeline` always encodes the empty prompt.
public enum NegativeConditioning: Equatable, Sendable {
    /// All-zero context and pooled embeddings.
    case zeros
    /// The text encoders' output for "".
    case emptyPrompt

    /// The rule for a folder: SD1.x/2.x encode ""; SDXL reads `force_zeros_for_empty_prompt` from
    /// `model_index.json` (absent file or key: true, the pipeline class's default).
    public static func of(_ folder: ModelFolder, isSDXL: Bool) throws -> NegativeConditioning {
        guard isSDXL else { return .emptyPrompt }
        let index = folder.root.appendingPathComponent("model_index.json")
        guard FileManager.default.fileExists(atPath: index.path) else { return .zeros }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: try Data(contentsOf: index))
        } catch {
            throw ModelFolder.FolderError.unreadableIndex(path: index.path, reason: FileErrorText.reason(error))
        }
        guard let dictionary = object as? [String: Any] else {
            throw ModelFolder.FolderError.unreadableIndex(path: index.path, reason: "not a JSON object")
        }
        switch dictionary["force_zeros_for_empty_prompt"] {
        case nil, is NSNull: return .zeros
        case let flag as Bool: return flag ? .zeros : .emptyPrompt
        default:
            throw ModelFolder.FolderError.unreadableIndex(path: index.path, reason: "force_zeros_for_empty_prompt is not true or false")
        }
    }
}
