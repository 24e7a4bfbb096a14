/// The model component a LoRA key targets, named as the diffusers pipeline folder names it.
public enum LoRAComponent: String, CaseIterable, Sendable {
    case unet
    case textEncoder = "text_encoder"
    case textEncoder2 = "text_encoder_2"
}

/// One key of a LoRA file, read by the conventions users' files follow:
///
/// * diffusers / PEFT (`pytorch_lora_weights.safetensors`): `unet.<module>.lora_A.weight` /
///   `.lora_B.weight`, the older `.lora.down.weight` / `.lora.up.weight` (and the text encoders'
///   `.lora_linear_layer.down/up.weight`), optional `<module>.alpha`; prefixes `unet.`,
///   `text_encoder.`, `text_encoder_2.`.
/// * kohya: `lora_unet_<module with '_' for '.'>.lora_down.weight` / `.lora_up.weight` / `.alpha`,
///   prefixes `lora_unet_`, `lora_te_` (single encoder), `lora_te1_`, `lora_te2_`.
///
/// kohya flattens the module path, which cannot be undone (`down_blocks` holds an underscore), so
/// such keys are matched against the model's own paths flattened the same way (`flattened(_:)`),
/// and for the UNet also against their SGM names (`SGMModuleNames`: kohya's SDXL LoRAs).
public struct LoRAKey: Hashable, Sendable {
    public enum Role: Sendable { case down, up, alpha }

    public let component: LoRAComponent
    /// The module as the file names it: a dotted path (diffusers) or a flattened one (kohya).
    public let module: String
    public let isFlattened: Bool
    public let role: Role

    /// The name module paths are matched on: flattened for kohya keys, dotted otherwise.
    public var matchName: String { module }

    /// nil when the key follows no supported convention.
    public init?(_ key: String) {
        for (prefix, component) in Self.kohyaPrefixes where key.hasPrefix(prefix) {
            let rest = String(key.dropFirst(prefix.count))
            guard let (module, role) = Self.split(rest, suffixes: Self.kohyaSuffixes), !module.contains(".") else { return nil }
            self.init(component: component, module: module, isFlattened: true, role: role)
            return
        }
        for (prefix, component) in Self.diffusersPrefixes where key.hasPrefix(prefix) {
            let rest = String(key.dropFirst(prefix.count))
            guard let (module, role) = Self.split(rest, suffixes: Self.diffusersSuffixes) else { return nil }
            self.init(component: component, module: module, isFlattened: false, role: role)
            return
        }
        return nil
    }

    init?(component: LoRAComponent, module: String, isFlattened: Bool, role: Role) {
        guard !module.isEmpty else { return nil }
        self.component = component
        self.module = module
        self.isFlattened = isFlattened
        self.role = role
    }

    /// A dotted module path as kohya writes it.
    public static func flattened(_ modulePath: String) -> String {
        modulePath.replacingOccurrences(of: ".", with: "_")
    }

    /// The key of `role` for the module of this key, in the file's convention (for error messages).
    func sibling(_ role: Role) -> String {
        let prefix = isFlattened
            ? Self.kohyaPrefixes.first { $0.1 == component }!.0
            : Self.diffusersPrefixes.first { $0.1 == component }!.0
        let suffix = isFlattened
            ? Self.kohyaSuffixes.first { $0.1 == role }!.0
            : Self.diffusersSuffixes.first { $0.1 == role }!.0
        return prefix + module + suffix
    }

    // Longer prefixes first: `text_encoder_2.` also starts with `text_encoder`.
    static let kohyaPrefixes: [(String, LoRAComponent)] = [
        ("lora_unet_", .unet), ("lora_te1_", .textEncoder), ("lora_te2_", .textEncoder2), ("lora_te_", .textEncoder),
    ]
    static let diffusersPrefixes: [(String, LoRAComponent)] = [
        ("unet.", .unet), ("text_encoder_2.", .textEncoder2), ("text_encoder.", .textEncoder),
    ]
    static let kohyaSuffixes: [(String, Role)] = [
        (".lora_down.weight", .down), (".lora_up.weight", .up), (".alpha", .alpha),
    ]
    static let diffusersSuffixes: [(String, Role)] = [
        (".lora_A.weight", .down), (".lora_B.weight", .up), (".lora.down.weight", .down), (".lora.up.weight", .up),
        (".lora_linear_layer.down.weight", .down), (".lora_linear_layer.up.weight", .up), (".alpha", .alpha),
    ]

    private static func split(_ rest: String, suffixes: [(String, Role)]) -> (String, Role)? {
        for (suffix, role) in suffixes where rest.hasSuffix(suffix) {
            return (String(rest.dropLast(suffix.count)), role)
        }
        return nil
    }
}
