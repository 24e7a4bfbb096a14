import Foundation

/// The `--ckpt` argument of the commands that read a ptq checkpoint (quantize, search sensitivity,
/// search select): a ptq output folder means `<folder>/ckpt.safetensors`; a file is taken as is.
enum CheckpointArgument {
    static func file(_ path: String) -> URL {
        var isDir: ObjCBool = false
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            return url.appendingPathComponent("ckpt.safetensors")
        }
        return url
    }
}
