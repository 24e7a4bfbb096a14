import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MixDQCompute
import MixDQIO
import MixDQModels

/// The embedded default models, so every command runs on a fresh machine with nothing to download:
/// the trained tiny model shipped in `assets/trained-tiny-sdxl` (`ensure(in:)`'s default, see
/// `TrainedModelAssets`), and a deterministic tiny SDXL-architecture pipeline in diffusers format
/// with seeded random weights, the real CLIP BPE tokenizer files and SDXL-Turbo's scheduler config
/// (`write(to:)`; `Kind.random`), whose bytes the parity fixtures pin.
///
/// The random model's topology follows sdxl-architecture.md §8.2: a 3-level UNet (32, 64, 96 channels, 32 groups,
/// head size 16, transformer depths 1/2/3, text_time embedding), CLIP-L-like and bigG-like text
/// encoders of different widths (32 and 48, projection 40) and a 4-level VAE; 128x128 images.
public enum DefaultModel {
    /// The random model's label. Bumped whenever the generator changes, so cached folders are rebuilt.
    public static let version = "tiny-sdxl-v1"
    public static let seed: UInt64 = 20_240_517

    public static var unetConfig: [String: Any] {
        [
            "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.24.0.dev0", "act_fn": "silu",
            "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64, "addition_time_embed_dim": 8,
            "attention_head_dim": [2, 4, 6], "attention_type": "default", "block_out_channels": [32, 64, 96],
            "center_input_sample": false, "class_embed_type": NSNull(), "class_embeddings_concat": false,
            "conv_in_kernel": 3, "conv_out_kernel": 3, "cross_attention_dim": 80, "cross_attention_norm": NSNull(),
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            "downsample_padding": 1, "dropout": 0.0, "dual_cross_attention": false, "encoder_hid_dim": NSNull(),
            "encoder_hid_dim_type": NSNull(), "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
            "layers_per_block": 2, "mid_block_only_cross_attention": NSNull(), "mid_block_scale_factor": 1,
            "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
            "num_attention_heads": NSNull(), "num_class_embeds": NSNull(), "only_cross_attention": false,
            "out_channels": 4, "projection_class_embeddings_input_dim": 88, "resnet_out_scale_factor": 1.0,
            "resnet_skip_time_act": false, "resnet_time_scale_shift": "default",
            "reverse_transformer_layers_per_block": NSNull(), "sample_size": 16, "time_cond_proj_dim": NSNull(),
            "time_embedding_act_fn": NSNull(), "time_embedding_dim": NSNull(), "time_embedding_type": "positional",
            "timestep_post_act": NSNull(), "transformer_layers_per_block": [1, 2, 3],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "upcast_attention": NSNull(),
            "use_linear_projection": true,
        ]
    }

    static func textEncoderConfig(hidden: Int, intermediate: Int, act: String, projection: Int, withProjection: Bool) -> [String: Any] {
        [
            "architectures": [withProjection ? "CLIPTextModelWithProjection" : "CLIPTextModel"],
            "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": act,
            "hidden_size": hidden, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": intermediate,
            "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
            "num_attention_heads": 4, "num_hidden_layers": 3, "pad_token_id": 1, "projection_dim": projection,
            "torch_dtype": "float32", "transformers_version": "4.36.0.dev0", "vocab_size": 49408,
        ]
    }

    public static var vaeConfig: [String: Any] {
        [
            "_class_name": "AutoencoderKL", "_diffusers_version": "0.24.0.dev0", "act_fn": "silu",
            "block_out_channels": [32, 32, 64, 64],
            "down_block_types": Array(repeating: "DownEncoderBlock2D", count: 4), "force_upcast": true,
            "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
            "sample_size": 128, "scaling_factor": 0.13025, "up_block_types": Array(repeating: "UpDecoderBlock2D", count: 4),
        ]
    }

    /// SDXL-Turbo's scheduler config (sdxl-architecture.md §1.2).
    public static var schedulerConfig: [String: Any] {
        [
            "_class_name": "EulerAncestralDiscreteScheduler", "_diffusers_version": "0.24.0.dev0",
            "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false,
            "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
            "sample_max_value": 1.0, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
            "timestep_spacing": "trailing", "trained_betas": NSNull(),
        ]
    }

    public static var modelIndex: [String: Any] {
        [
            "_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.24.0.dev0",
            "feature_extractor": [NSNull(), NSNull()], "force_zeros_for_empty_prompt": true,
            "image_encoder": [NSNull(), NSNull()], "scheduler": ["diffusers", "EulerAncestralDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        ]
    }

    static func writeJSON(_ object: [String: Any], to url: URL) throws {
        try AtomicFile.write(Data((JSONText.encode(object) + "\n").utf8), to: url)
    }

    /// Builds a component from seeded random weights and returns its state dict.
    static func stateDict(_ component: String, _ build: (WeightSource) throws -> Void) throws -> [(String, Tensor)] {
        let recorder = RecordingWeightSource(RandomWeightSource(seed: seed ^ RandomWeightSource.fnv1a(component)))
        try build(recorder)
        return recorder.recorded
    }

    /// A component's config.json: written from a dictionary, or copied from a file.
    public enum ConfigSource {
        case dictionary([String: Any])
        case file(URL)
    }

    /// The four component configs of a pipeline.
    public struct ComponentConfigs {
        public var unet, textEncoder, textEncoder2, vae: ConfigSource
        public var label: String

        public static var tiny: ComponentConfigs {
            ComponentConfigs(unet: .dictionary(unetConfig),
                             textEncoder: .dictionary(textEncoderConfig(hidden: 32, intermediate: 64, act: "quick_gelu", projection: 32, withProjection: false)),
                             textEncoder2: .dictionary(textEncoderConfig(hidden: 48, intermediate: 96, act: "gelu", projection: 40, withProjection: true)),
                             vae: .dictionary(vaeConfig), label: version)
        }

        /// Full-size SDXL-Turbo from `configs/models/` (random weights: for memory and speed runs).
        public static func sdxlTurbo(configsFolder: URL) -> ComponentConfigs {
            ComponentConfigs(unet: .file(configsFolder.appendingPathComponent("sdxl-turbo-unet.json")),
                             textEncoder: .file(configsFolder.appendingPathComponent("sdxl-turbo-text-encoder.json")),
                             textEncoder2: .file(configsFolder.appendingPathComponent("sdxl-turbo-text-encoder-2.json")),
                             vae: .file(configsFolder.appendingPathComponent("sdxl-turbo-vae.json")),
                             label: "sdxl-turbo-random")
        }
    }

    /// Writes the seeded random tiny pipeline (or, with `configs`, another architecture with
    /// random weights). `dtype` F16 halves the files (like the `fp16` variant of real checkpoints).
    /// The folder is built and installed as `build(to:label:fill:)` describes.
    public static func write(to folder: URL, configs: ComponentConfigs = .tiny, dtype: SafetensorsDType = .f32) throws {
        try build(to: folder, label: configs.label) { tmp, sub in
            try writeRandomModel(into: tmp, sub: sub, configs: configs, dtype: dtype)
        }
    }

    /// Builds a model folder in a uniquely named temporary folder beside `folder` (`fill` writes
    /// its contents; `sub` makes a subfolder), stamps it with `label` and renames it into place,
    /// so readers never see half a model and concurrent writers never share files.
    ///
    /// An existing `folder` is replaced only if it is empty or a model this type wrote (its
    /// `MIXDQ_DEFAULT_MODEL` stamp and nothing but model files at its top level); anything else
    /// is refused before any work, so no user file is ever deleted.
    static func build(to folder: URL, label: String, fill: (URL, (String) throws -> URL) throws -> Void) throws {
        let fm = FileManager.default
        try checkReplaceable(folder)
        let parent = folder.deletingLastPathComponent()
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw DefaultModelError(path: parent.path, message: "cannot create the folder (\(FileErrorText.reason(error)))")
        }
        let tmp = parent.appendingPathComponent(".\(folder.lastPathComponent).partial-\(getpid())-\(UUID().uuidString.prefix(8))")
        do {
            try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        } catch {
            throw DefaultModelError(path: folder.path, message: "cannot create the temporary folder \(tmp.path) (\(FileErrorText.reason(error)))")
        }
        defer { try? fm.removeItem(at: tmp) }   // ours alone: its name is unique to this call
        func sub(_ name: String) throws -> URL {
            let u = tmp.appendingPathComponent(name)
            do { try fm.createDirectory(at: u, withIntermediateDirectories: true) } catch {
                throw DefaultModelError(path: u.path, message: "cannot create the folder (\(FileErrorText.reason(error)))")
            }
            return u
        }
        try fill(tmp, sub)
        // The stamp goes last: a folder holding it is complete.
        try AtomicFile.write(Data("\(label)\n".utf8), to: tmp.appendingPathComponent(stampName))
        try install(tmp, at: folder, label: label)
    }

    /// Both tokenizer folders, in SDXL-Turbo's layout, from the shipped CLIP BPE files.
    static func writeTokenizers(sub: (String) throws -> URL) throws {
        try CLIPTokenizer.writeFolder(to: try sub("tokenizer"), padToken: "<|endoftext|>")
        try CLIPTokenizer.writeFolder(to: try sub("tokenizer_2"), padToken: "!")
    }

    static func writeRandomModel(into tmp: URL, sub: (String) throws -> URL, configs: ComponentConfigs,
                                 dtype: SafetensorsDType) throws {
        try writeJSON(modelIndex, to: tmp.appendingPathComponent("model_index.json"))
        try writeJSON(schedulerConfig, to: try sub("scheduler").appendingPathComponent("scheduler_config.json"))
        try writeTokenizers(sub: sub)

        let components: [(String, ConfigSource, String, (URL, WeightSource) throws -> Void)] = [
            ("unet", configs.unet, "diffusion_pytorch_model.safetensors", { url, w in
                _ = try UNet2DConditionModel(config: try UNetConfig.load(url), weights: w) }),
            ("text_encoder", configs.textEncoder,
             "model.safetensors", { url, w in _ = try CLIPTextModel(config: try CLIPTextConfig.load(url), weights: w) }),
            ("text_encoder_2", configs.textEncoder2,
             "model.safetensors", { url, w in _ = try CLIPTextModel(config: try CLIPTextConfig.load(url), weights: w) }),
            ("vae", configs.vae, "diffusion_pytorch_model.safetensors", { url, w in
                let config = try VAEConfig.load(url)
                try AutoencoderKLEncoderLayout.requestAll(ModuleLoader(weights: w), config: config)
                _ = try AutoencoderKLDecoder(config: config, weights: w) }),
        ]
        for (name, config, file, build) in components {
            let dir = try sub(name)
            let configURL = dir.appendingPathComponent("config.json")
            switch config {
            case .dictionary(let d): try writeJSON(d, to: configURL)
            case .file(let u):
                do { try AtomicFile.write(try Data(contentsOf: u), to: configURL) } catch let error as IOError { throw error } catch {
                    throw DefaultModelError(path: u.path, message: "cannot read the config (\(FileErrorText.reason(error)))")
                }
            }
            var tensors = try stateDict(name) { try build(configURL, $0) }
            try SafetensorsWriter.write(tensors, metadata: ["format": "pt", "mixdq_default_model": configs.label],
                                        dtype: dtype, to: dir.appendingPathComponent(file))
            tensors = []
        }
    }

    /// The file that marks a complete folder written by `write(to:)`; it holds the model's label.
    public static let stampName = "MIXDQ_DEFAULT_MODEL"
    /// Everything `write(to:)` puts at the top of its folder.
    static let topLevelEntries: Set<String> = [stampName, "model_index.json", "scheduler", "tokenizer", "tokenizer_2",
                                               "unet", "text_encoder", "text_encoder_2", "vae"]

    /// The label in `folder`'s stamp when the folder is one `write(to:)` made, else nil.
    static func stampLabel(_ folder: URL) -> String? {
        let stamp = folder.appendingPathComponent(stampName)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: stamp.path),
              attributes[.type] as? FileAttributeType == .typeRegular, (attributes[.size] as? NSNumber)?.intValue ?? 0 < 1024,
              let text = try? String(contentsOf: stamp, encoding: .utf8),
              let entries = try? FileManager.default.contentsOfDirectory(atPath: folder.path),
              Set(entries).isSubset(of: topLevelEntries) else { return nil }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// True when `folder` is a complete model written by `write(to:)` with this label.
    static func isComplete(_ folder: URL, label: String) -> Bool {
        stampLabel(folder) == label && topLevelEntries.allSatisfy {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path)
        }
    }

    /// Throws unless `folder` is absent, an empty folder, or a model `write(to:)` made.
    static func checkReplaceable(_ folder: URL) throws {
        var isDirectory: ObjCBool = false
        // lstat semantics: a symbolic link is refused, not followed.
        let isLink = (try? FileManager.default.destinationOfSymbolicLink(atPath: folder.path)) != nil
        guard isLink || FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) else { return }
        guard !isLink, isDirectory.boolValue else {
            throw DefaultModelError(path: folder.path, message: "exists and is not a folder; refusing to replace it (choose another --output)")
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        if entries.isEmpty || stampLabel(folder) != nil { return }
        throw DefaultModelError(path: folder.path, message: "exists and is not a model written by mixdq default-model (no \(stampName) stamp, "
            + "or files of its own); refusing to replace it (choose another --output or remove it yourself)")
    }

    /// Renames the finished `tmp` to `folder` (atomic when `folder` is absent or empty). A model
    /// of ours already there (a rerun, perhaps to repair it) is moved aside first and removed
    /// after. If another writer's rename lands in between, its model is kept when it is complete
    /// with the same label (the generator is deterministic, so it is the same model).
    static func install(_ tmp: URL, at folder: URL, label: String) throws {
        if rename(tmp.path, folder.path) == 0 { return }
        let firstError = errno
        guard firstError == EEXIST || firstError == ENOTEMPTY else {
            throw DefaultModelError(path: folder.path, message: "cannot move the finished model into place (\(String(cString: strerror(firstError))))")
        }
        try checkReplaceable(folder)
        let old = folder.deletingLastPathComponent()
            .appendingPathComponent(".\(folder.lastPathComponent).old-\(getpid())-\(UUID().uuidString.prefix(8))")
        guard rename(folder.path, old.path) == 0 else {
            throw DefaultModelError(path: folder.path, message: "cannot move the previous model aside (\(String(cString: strerror(errno))))")
        }
        guard rename(tmp.path, folder.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if !isComplete(folder, label: label) { _ = rename(old.path, folder.path) }
            try? FileManager.default.removeItem(at: old)
            if isComplete(folder, label: label) { return }
            throw DefaultModelError(path: folder.path, message: "cannot move the finished model into place (\(reason))")
        }
        try? FileManager.default.removeItem(at: old)
    }

    /// The folder of the default model of `kind` under `cache`, written on first use. Processes
    /// starting together take turns on a lock file in the cache (flock), so one builds and the
    /// others then find the finished folder.
    public static func ensure(in cache: URL, kind: Kind? = nil) throws -> URL {
        let kind = try kind ?? Kind.fromEnvironment()
        let trained = kind == .trained ? try TrainedModelAssets.locate() : nil
        let label = try trained?.label() ?? version
        let folder = cache.appendingPathComponent(label)
        if isComplete(folder, label: label) { return folder }
        do {
            try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        } catch {
            throw DefaultModelError(path: cache.path, message: "cannot create the model cache folder (\(FileErrorText.reason(error)))")
        }
        let lockPath = cache.appendingPathComponent(".\(label).lock").path
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw DefaultModelError(path: lockPath, message: "cannot open the cache lock file (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }   // closing releases the lock
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw DefaultModelError(path: lockPath, message: "cannot lock the cache (\(String(cString: strerror(errno))))")
            }
        }
        if isComplete(folder, label: label) { return folder }
        if let trained { try writeTrained(to: folder, from: trained) } else { try write(to: folder) }
        return folder
    }

    /// Writes the trained model (`assets/trained-tiny-sdxl`, see `TrainedModelAssets`) as a
    /// complete pipeline folder: its files copied, the tokenizer folders written from the shared
    /// CLIP BPE files. The stamp holds the model's content label.
    public static func writeTrained(to folder: URL, from assets: TrainedModelAssets? = nil) throws {
        let assets = try assets ?? TrainedModelAssets.locate()
        try build(to: folder, label: try assets.label()) { tmp, sub in
            for relative in TrainedModelAssets.files {
                let parts = relative.split(separator: "/").map(String.init)
                let dir = parts.count > 1 ? try sub(parts[0]) : tmp
                try AtomicFile.write(try assets.contents(of: relative), to: dir.appendingPathComponent(parts[parts.count - 1]))
            }
            try writeTokenizers(sub: sub)
        }
    }

    /// Which embedded model `ensure(in:)` provides when the caller does not say.
    public enum Kind: String, CaseIterable, Sendable {
        /// The model trained on the synthetic shapes domain (scripts/train/), shipped in assets/.
        case trained
        /// The seeded random tiny model (`DefaultModel.write(to:)`): parity tests pin its bytes.
        case random

        /// The environment variable that chooses the kind (`trained` when unset).
        public static let environmentVariable = "MIXDQ_DEFAULT_MODEL"

        public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Kind {
            guard let value = environment[environmentVariable], !value.isEmpty else { return .trained }
            guard let kind = Kind(rawValue: value) else {
                throw DefaultModelError(path: environmentVariable, message: "unknown default model \"\(value)\" "
                    + "(expected \(allCases.map(\.rawValue).joined(separator: " or ")))")
            }
            return kind
        }
    }

    /// `$MIXDQ_CACHE`, else `$XDG_CACHE_HOME/mixdq`, else `~/.cache/mixdq`.
    public static var defaultCache: URL {
        let env = ProcessInfo.processInfo.environment
        if let c = env["MIXDQ_CACHE"], !c.isEmpty { return URL(fileURLWithPath: c) }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("mixdq") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/mixdq")
    }
}

/// A default-model folder that cannot be written or replaced, naming the path.
public struct DefaultModelError: Error, CustomStringConvertible, LocalizedError {
    public let path: String, message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
    public var errorDescription: String? { description }
}

/// JSON as diffusers and transformers write it (indent 2, sorted keys, floats keep their decimal
/// point). Foundation's JSONSerialization prints 1.0 as 1, which transformers' strict config
/// validation rejects for float fields such as `initializer_factor`.
enum JSONText {
    static func encode(_ value: Any, indent: Int = 0) -> String {
        let pad = String(repeating: " ", count: indent), inner = String(repeating: " ", count: indent + 2)
        switch value {
        case let d as [String: Any]:
            if d.isEmpty { return "{}" }
            let items = d.keys.sorted().map { "\(inner)\(string($0)): \(encode(d[$0]!, indent: indent + 2))" }
            return "{\n" + items.joined(separator: ",\n") + "\n\(pad)}"
        case let a as [Any]:
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { inner + encode($0, indent: indent + 2) }.joined(separator: ",\n") + "\n\(pad)]"
        case let s as String: return string(s)
        case let b as Bool: return b ? "true" : "false"
        case let i as Int: return String(i)
        case let x as Double: return x == x.rounded() && abs(x) < 1e15 ? String(format: "%.1f", x) : "\(x)"
        case is NSNull: return "null"
        default: return "null"
        }
    }

    static func string(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if ch.value < 0x20 { out += String(format: "\\u%04x", ch.value) } else { out.unicodeScalars.append(ch) }
            }
        }
        return out + "\""
    }
}
