import Foundation

/// Why a LoRA file cannot be fused; every case names the LoRA file, and the keys or modules at fault.
public enum LoRAError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// Keys that follow none of the supported naming conventions (LoHa, DoRA, attention-processor files ...).
    case unknownKeys(file: String, keys: [String])
    /// A module with a down matrix and no up matrix, or the reverse (`missing` names the absent key).
    case incompleteModule(file: String, module: String, missing: String)
    /// Modules the LoRA targets that the model component never loaded (another architecture).
    case unmatchedModules(file: String, component: String, modules: [String], model: String)
    /// Down/up shapes that do not multiply to the base weight's shape.
    case shapeMismatch(file: String, module: String, down: [Int], up: [Int], weight: [Int])
    /// An `.alpha` that is not one finite positive number.
    case invalidAlpha(file: String, key: String, detail: String)
    /// A LoRA folder without a weights file.
    case noWeightsFile(folder: String)
    /// A deployable quantized UNet holds packed codes: a LoRA cannot be fused into it afterwards.
    case quantizedUNet(file: String, unet: String)
    /// A quantized UNet made with a LoRA fused (`fused`: its identity) loaded without that LoRA
    /// (`given`: the identity passed, nil for none), so the text encoders would not match it.
    case quantizedUNetLoRAMismatch(unet: String, fused: String, given: String?)

    public var description: String {
        switch self {
        case let .unknownKeys(file, keys):
            return "\(file): \(keys.count) key(s) follow no supported LoRA naming (diffusers/PEFT lora_A/lora_B, "
                + "lora.down/lora.up, kohya lora_unet_/lora_te_/lora_te1_/lora_te2_ with lora_down/lora_up/alpha): \(Self.list(keys))"
        case let .incompleteModule(file, module, missing):
            return "\(file): LoRA module '\(module)' has no '\(missing)'"
        case let .unmatchedModules(file, component, modules, model):
            return "\(file): \(modules.count) LoRA module(s) for the \(component) match no weight of \(model): \(Self.list(modules))"
        case let .shapeMismatch(file, module, down, up, weight):
            return "\(file): LoRA module '\(module)': down \(down) and up \(up) do not fit the model's weight \(weight) "
                + "(expected down [rank, in, ...] and up [out, rank, 1...])"
        case let .invalidAlpha(file, key, detail):
            return "\(file): '\(key)' \(detail) (expected one finite positive number)"
        case let .noWeightsFile(folder):
            return "\(folder): no LoRA weights file (expected pytorch_lora_weights.safetensors or a single .safetensors file)"
        case let .quantizedUNet(file, unet):
            return "\(file): cannot fuse a LoRA into the quantized UNet \(unet) (run ptq and quantize with --lora to build one with it fused)"
        case let .quantizedUNetLoRAMismatch(unet, fused, given):
            return "\(unet): this quantized UNet was made with the LoRA \(fused) fused; "
                + (given.map { "the LoRA given is \($0)" } ?? "no --lora was given")
                + ": pass the same LoRA file and --lora-scale, so that the text encoders get it too"
        }
    }

    public var errorDescription: String? { description }

    /// The first 20 names, then a count: errors stay readable for files with hundreds of keys.
    static func list(_ names: [String]) -> String {
        names.prefix(20).joined(separator: ", ") + (names.count > 20 ? ", ... (\(names.count - 20) more)" : "")
    }
}
