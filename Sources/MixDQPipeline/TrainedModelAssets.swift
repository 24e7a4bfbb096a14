import Foundation
import MixDQIO
import MixDQModels

/// The trained tiny SDXL-architecture model committed in `assets/trained-tiny-sdxl/` (fp16
/// safetensors and configs, made by scripts/train/; no tokenizer files: those are written from
/// `assets/clip-bpe`, stored once).
///
/// The folder is found as the sibling of `assets/clip-bpe`, through the same search as the
/// tokenizer files (`MIXDQ_ASSETS`, the executable's folder and its parents, the working
/// directory and its parents): one mechanism for every shipped file, working from any directory
/// of a checkout and for an installed binary given `MIXDQ_ASSETS`. SwiftPM resources are not
/// used: on Linux they live in a bundle folder beside the build product that an installed copy
/// of the binary loses, and they would copy 20 MB into every build.
public struct TrainedModelAssets {
    public static let folderName = "trained-tiny-sdxl"
    /// Every shipped file, relative to the folder.
    public static let files = [
        "model_index.json", "scheduler/scheduler_config.json",
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json", "text_encoder/model.safetensors",
        "text_encoder_2/config.json", "text_encoder_2/model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    ]

    public let folder: URL
    public init(folder: URL) { self.folder = folder }

    /// The shipped folder beside the CLIP BPE assets.
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TrainedModelAssets {
        let assets = try CLIPTokenizer.bundledAssetsFolder(environment: environment).deletingLastPathComponent()
        let folder = assets.appendingPathComponent(folderName)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DefaultModelError(path: folder.path, message: "the trained default model is not there (it ships beside "
                + "assets/clip-bpe; set MIXDQ_ASSETS, or use the random model: \(DefaultModel.Kind.environmentVariable)=random)")
        }
        return TrainedModelAssets(folder: folder)
    }

    /// The bytes of one shipped file; a missing or unreadable file is named.
    public func contents(of relative: String) throws -> Data {
        let url = folder.appendingPathComponent(relative)
        do {
            return try Data(contentsOf: url)
        } catch {
            throw DefaultModelError(path: url.path, message: "cannot read a file of the trained default model "
                + "(\(FileErrorText.reason(error)))")
        }
    }

    /// "trained-tiny-sdxl-" + a 64-bit FNV-1a of every shipped file's name and bytes: a retrained
    /// model gets a new cache folder without anyone bumping a version by hand.
    public func label() throws -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: UnsafeRawBufferPointer) {
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        for relative in Self.files {
            Data(relative.utf8).withUnsafeBytes(mix)
            try contents(of: relative).withUnsafeBytes(mix)
        }
        return Self.folderName + "-" + String(hash, radix: 16)
    }
}
