import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQQuant

/// A diffusers pipeline folder (`model_index.json`, `unet/`, `vae/`, `text_encoder/`, ...), or a
/// single component folder given directly.
public struct ModelFolder {
    public let root: URL
    /// A UNet folder used instead of `root`'s (`--unet`: e.g. a deployable quantized UNet).
    public var unetOverride: URL?
    /// A LoRA fused into the UNet and text encoders as they load (`--lora`, `adapter_id`).
    public var lora: LoRAWeights?
    /// A scheduler class used instead of the folder's, read from its scheduler_config.json (the
    /// original switches to LCMScheduler when a config has `adapter_id`).
    public var schedulerOverride: SchedulerConfig.ClassName?
    public init(_ root: URL, unet: URL? = nil, lora: LoRAWeights? = nil) {
        self.root = root; self.unetOverride = unet; self.lora = lora
    }

    public enum FolderError: Error, CustomStringConvertible, LocalizedError {
        case missingComponent(component: String, path: String)
        case missingFolder(component: String, path: String)
        case missingFile(path: String)
        case wrongComponent(component: String, path: String, found: String)
        case unreadableIndex(path: String, reason: String)
        public var description: String {
            switch self {
            case let .unreadableIndex(path, reason):
                return "\(path): cannot read the pipeline index (\(reason))"
            case let .missingFolder(component, path):
                return "\(path): no '\(component)' folder (expected \(path)/\(component)/)"
            case let .missingFile(path):
                return "\(path): file not found"
            case let .missingComponent(component, path):
                return "\(path): no '\(component)' component folder (expected \(path)/\(component)/config.json, "
                    + "or \(path) itself to be that folder)"
            case let .wrongComponent(component, path, found):
                return "\(path)/config.json describes \(found), not the '\(component)' component "
                    + "(give a pipeline folder holding \(component)/, or the \(component)/ folder itself)"
            }
        }
        public var errorDescription: String? { description }
    }

    /// The folder of a component: `root/<name>` when it has a config.json, else `root` itself when
    /// root's config.json describes that component (`ComponentKind`), whatever root is called.
    public func component(_ name: String) throws -> URL {
        if name == "unet", let unetOverride { return try ModelFolder(unetOverride).component("unet") }
        let fm = FileManager.default
        let sub = root.appendingPathComponent(name)
        if fm.fileExists(atPath: sub.appendingPathComponent("config.json").path) { return sub }
        let own = root.appendingPathComponent("config.json")
        guard fm.fileExists(atPath: own.path) else { throw FolderError.missingComponent(component: name, path: root.path) }
        let found = ComponentKind(configAt: own)
        if let expected = ComponentKind(componentName: name), found == expected { return root }
        // A config.json of unknown kind in a folder of the right name: let the config loader name what is wrong.
        if found == nil, root.lastPathComponent == name { return root }
        throw FolderError.wrongComponent(component: name, path: root.path, found: found?.description ?? "no known model component")
    }

    /// Builds the UNet in the given precision; `packForInference` for FP-only use (faster, not quantizable);
    /// `attentionPrecision` when the attention matmuls differ from the dense layers (fp32 layers a
    /// quantizer reads, bf16 attention).
    public func loadUNet(precision: Precision = .fp32, attentionPrecision: Precision? = nil,
                         packForInference: Bool = false) throws -> UNet2DConditionModel {
        let dir = try component("unet")
        let config = try UNetConfig.load(dir.appendingPathComponent("config.json"))
        let weights = try SafetensorsWeightSource.open(folder: dir)
        guard QuantizedUNetKernels.isQuantizedUNet(weights) else {
            let fused = lora?.fused(.unet, into: weights, modelName: dir.path, sgmNames: SGMModuleNames(config: config)) ?? weights
            return try UNet2DConditionModel(config: config, weights: fused, precision: precision, attentionPrecision: attentionPrecision,
                                            packForInference: packForInference)
        }
        // A LoRA is fused before quantization (`quantize --lora`), which records it: the same LoRA
        // must come with it (the text encoders need it), and none can be fused afterwards.
        if let fused = weights.metadata[QuantizedUNetFormat.loraKey] {
            guard let lora, lora.identity == fused else {
                throw LoRAError.quantizedUNetLoRAMismatch(unet: dir.path, fused: fused, given: lora?.identity)
            }
        } else if let lora, lora.targets(.unet) {
            throw LoRAError.quantizedUNet(file: lora.file, unet: dir.path)
        }
        // A deployable quantized UNet: its quantized layers come from packed codes, FP ones load as usual.
        let factory = try QuantizedUNetKernels(source: weights, floatPrecision: precision)
        let unet = try UNet2DConditionModel(config: config, weights: weights, precision: precision, attentionPrecision: attentionPrecision,
                                            packForInference: true,
                                            kernelFactory: factory)
        try factory.finish()
        return unet
    }
}

extension ModelFolder {
    /// A component folder that has no config.json (tokenizers, scheduler).
    public func componentFolder(_ name: String) throws -> URL {
        let sub = root.appendingPathComponent(name)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: sub.path, isDirectory: &isDir), isDir.boolValue { return sub }
        throw FolderError.missingFolder(component: name, path: root.path)
    }

    public func file(_ component: String, _ name: String) throws -> URL {
        let url = try componentFolder(component).appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { throw FolderError.missingFile(path: url.path) }
        return url
    }

    public func loadTextEncoder(_ name: String, precision: Precision = .fp32) throws -> CLIPTextModel {
        let dir = try component(name)
        let config = try CLIPTextConfig.load(dir.appendingPathComponent("config.json"))
        let weights = try SafetensorsWeightSource.open(folder: dir, ignoredKeyPatterns: CLIPTextModel.ignoredKeyPatterns)
        let component: LoRAComponent = name == "text_encoder_2" ? .textEncoder2 : .textEncoder
        let fused = lora?.fused(component, into: weights, modelName: dir.path) ?? weights
        return try CLIPTextModel(config: config, weights: fused, precision: precision, packForInference: true)
    }

    /// The VAE decoder, always fp32 (SDXL's VAE overflows in half precision).
    public func loadVAEDecoder() throws -> AutoencoderKLDecoder {
        let dir = try component("vae")
        let config = try VAEConfig.load(dir.appendingPathComponent("config.json"))
        let weights = VAEWeightSource(try SafetensorsWeightSource.open(folder: dir),
                                      unusedPrefixes: AutoencoderKLDecoder.encoderKeyPrefixes)
        return try AutoencoderKLDecoder(config: config, weights: weights, packForInference: true)
    }
}

extension ModelFolder {
    /// The header of a deployable quantized UNet (`mixdq quantize` output: bits fixed in it), checked;
    /// nil for an fp32 UNet. Reads the safetensors header only.
    public func quantizedUNetHeader() throws -> QuantizedUNetKernels? {
        let source = try SafetensorsWeightSource.open(folder: try component("unet"))
        return QuantizedUNetKernels.isQuantizedUNet(source) ? try QuantizedUNetKernels(source: source) : nil
    }
}
