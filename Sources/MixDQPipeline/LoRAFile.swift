import Foundation
import MixDQIO
import MixDQModels

extension LoRAWeights {
    /// The file diffusers' `save_lora_weights` writes, looked for in a LoRA folder.
    public static let diffusersFileName = "pytorch_lora_weights.safetensors"

    /// Reads a LoRA from a `.safetensors` file, or from a folder holding
    /// `pytorch_lora_weights.safetensors` (else its only `.safetensors` file).
    public static func load(_ url: URL, scale: Float) throws -> LoRAWeights {
        let file = try weightsFile(url)
        let st = try SafetensorsFile(file)
        let weights = try LoRAWeights(file: file.path, keys: st.keys, scale: scale) { key in
            let t = try st.floatTensor(key, copy: true)
            try NonFiniteTensorError.check(t, key: key, file: file.path)
            return t
        }
        weights.contentDigest = try ContentDigest.hex(of: file)
        return weights
    }

    static func weightsFile(_ url: URL) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ModelFolder.FolderError.missingFile(path: url.path)
        }
        guard isDirectory.boolValue else { return url }
        let preferred = url.appendingPathComponent(diffusersFileName)
        if FileManager.default.fileExists(atPath: preferred.path) { return preferred }
        let candidates = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [])
            .filter { $0.hasSuffix(".safetensors") }
        guard candidates.count == 1 else { throw LoRAError.noWeightsFile(folder: url.path) }
        return url.appendingPathComponent(candidates[0])
    }
}
