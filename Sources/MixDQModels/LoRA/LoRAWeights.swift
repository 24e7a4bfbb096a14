import Foundation
import MixDQCompute

/// One LoRA module: W += scale · (alpha / rank) · up · down.
public struct LoRAModule: @unchecked Sendable {
    /// The module as the file names it (dotted or kohya-flattened), for messages.
    public let name: String
    /// [rank, in, kh, kw...] (linear: [rank, in]).
    public let down: Tensor
    /// [out, rank, 1...].
    public let up: Tensor
    /// nil: alpha = rank (scaling 1), as diffusers and PEFT take a missing alpha.
    public let alpha: Float?

    public var rank: Int { down.shape.first ?? 0 }
}

/// The modules of a LoRA file grouped by the component they target, with the fuse scale
/// (diffusers' `fuse_lora(lora_scale=)`; the original fuses at 1.0).
public final class LoRAWeights: @unchecked Sendable {
    /// The file the weights came from (errors name it).
    public let file: String
    public let scale: Float
    /// Component -> the module's match name (dotted, or kohya-flattened) -> module.
    let modules: [LoRAComponent: [String: LoRAModule]]
    /// A digest of the file's bytes (set by the loader); with the scale, what a quantized UNet records
    /// of the LoRA fused into it.
    public var contentDigest: String?

    /// `<file name> (fnv1a64 <digest>, scale <s>)`: the same file content at the same scale.
    public var identity: String {
        "\((file as NSString).lastPathComponent) (fnv1a64 \(contentDigest ?? "unknown"), scale \(scale))"
    }

    /// Groups `keys` into modules, loading each tensor through `tensor` (as float32). Keys that
    /// follow no convention, modules missing their down or up matrix and malformed alphas throw.
    public init(file: String, keys: [String], scale: Float, tensor: (String) throws -> Tensor) throws {
        self.file = file
        self.scale = scale
        var parsed: [LoRAComponent: [String: [LoRAKey.Role: (key: String, parsed: LoRAKey)]]] = [:]
        var unknown: [String] = []
        for key in keys.sorted() {
            guard let k = LoRAKey(key) else { unknown.append(key); continue }
            parsed[k.component, default: [:]][k.matchName, default: [:]][k.role] = (key, k)
        }
        if !unknown.isEmpty { throw LoRAError.unknownKeys(file: file, keys: unknown) }
        var modules: [LoRAComponent: [String: LoRAModule]] = [:]
        for (component, byModule) in parsed {
            for (name, roles) in byModule {
                let any = roles.values.first!.parsed
                guard let down = roles[.down] else { throw LoRAError.incompleteModule(file: file, module: name, missing: any.sibling(.down)) }
                guard let up = roles[.up] else { throw LoRAError.incompleteModule(file: file, module: name, missing: any.sibling(.up)) }
                var alpha: Float? = nil
                if let a = roles[.alpha] {
                    let t = try tensor(a.key)
                    guard t.count == 1 else { throw LoRAError.invalidAlpha(file: file, key: a.key, detail: "has shape \(t.shape)") }
                    let v = t[flat: 0]
                    guard v.isFinite, v > 0 else { throw LoRAError.invalidAlpha(file: file, key: a.key, detail: "is \(v)") }
                    alpha = v
                }
                modules[component, default: [:]][name] = LoRAModule(name: name, down: try tensor(down.key), up: try tensor(up.key), alpha: alpha)
            }
        }
        self.modules = modules
    }

    /// True when the LoRA changes some weight of `component`.
    public func targets(_ component: LoRAComponent) -> Bool { !(modules[component]?.isEmpty ?? true) }

    /// `base` with this LoRA fused into the weights of `component` as the model asks for them;
    /// `base` itself when the LoRA does not touch the component. `sgmNames` (the UNet's layout)
    /// also matches kohya keys that name SGM modules (SDXL LoRAs trained by kohya).
    public func fused(_ component: LoRAComponent, into base: WeightSource, modelName: String, sgmNames: SGMModuleNames? = nil) -> WeightSource {
        guard let m = modules[component], !m.isEmpty else { return base }
        return LoRAFusedWeightSource(base: base, modules: m, scale: scale, file: file, component: component, modelName: modelName,
                                     sgmNames: sgmNames)
    }
}
