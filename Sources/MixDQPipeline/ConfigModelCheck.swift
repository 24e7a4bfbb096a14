import Foundation
import MixDQIO

/// What a MixDQ config asks of the model folder, checked before any work: `model.model_type`
/// must match the folder's UNet and `adapter_id` must be a local LoRA; otherwise an error names
/// the config and key rather than a run that silently ignores it.
extension ModelFolder {
    /// The family a folder's UNet belongs to: SDXL UNets take the `text_time` added embedding
    /// (pooled text + size conditioning), SD1.x/2.x UNets take none.
    public func modelType() throws -> MixDQConfig.ModelType {
        let file = try component("unet").appendingPathComponent("config.json")
        let object: [String: Any]
        do {
            let data = try Data(contentsOf: file)
            guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw FolderError.wrongComponent(component: "unet", path: file.deletingLastPathComponent().path,
                                                 found: "a JSON value that is not an object")
            }
            object = o
        } catch let error as FolderError {
            throw error
        } catch {
            throw FolderError.wrongComponent(component: "unet", path: file.deletingLastPathComponent().path,
                                             found: "an unreadable config.json (\(FileErrorText.reason(error)))")
        }
        return object["addition_embed_type"] as? String == "text_time" ? .sdxl : .sd
    }

    /// Throws a `ConfigError` naming the config file and key when the config asks for something
    /// this folder is not.
    public func check(against config: MixDQConfig) throws {
        let file = config.sourceURL?.path ?? "<config>"
        let found = try modelType()
        let unetFolder = try component("unet").path
        if found != config.model.modelType {
            throw ConfigError(file: file, key: "model.model_type", line: nil,
                              message: "'\(config.model.modelType.rawValue)' does not match the model: \(unetFolder) is "
                                  + "\(found == .sdxl ? "an SDXL UNet (addition_embed_type text_time)" : "an SD1.x/2.x UNet (no added embeddings)")"
                                  + "; set model_type: '\(found.rawValue)' or give the matching model")
        }
        // A Hub id is refused here, before any work.
        _ = try config.adapterURL()
    }
}
