import Foundation
import Yams

/// A MixDQ configuration file (`configs/stable-diffusion/sdxl_turbo.yaml` of the original), with
/// the original's keys, plus a few extensions documented in `configs/README.md`:
/// `model.path`, `calib_data.captions`, `calib_data.height`/`width` and
/// `quant.activation.quantizer.ema_compat_repeat`.
///
/// The original files load unchanged. Loading is strict: unknown keys and ill-typed values
/// throw a `ConfigError` naming the file, the dotted key and its line. Relative paths
/// (`model.path`, `calib_data.path`, `calib_data.captions`) resolve against the folder of the
/// config file and are stored absolute, so `yamlString()` writes a self-contained copy.
public struct MixDQConfig: Codable, Equatable, Sendable {
    public enum ModelType: String, Codable, Equatable, Sendable {
        case sd, sdxl
    }

    public struct Model: Codable, Equatable, Sendable {
        /// Hugging Face id (`stabilityai/sdxl-turbo`); names the model, nothing is downloaded.
        public var modelID: String
        /// The original's download cache; kept for fidelity, not used.
        public var cacheDir: String?
        public var modelType: ModelType
        /// LoRA to fuse before quantization (the LCM config). A local file or folder is stored
        /// absolute; anything else (a Hub id) is kept as written and refused by `adapterURL()`.
        public var adapterID: String?
        /// Extension: a local diffusers folder holding the model (absolute after loading).
        /// Unset: the tool uses its embedded default model.
        public var path: String?

        public var url: URL? { path.map { URL(fileURLWithPath: $0) } }

        enum CodingKeys: String, CodingKey {
            case modelID = "model_id", cacheDir = "cache_dir", modelType = "model_type", adapterID = "adapter_id", path
        }
    }

    public struct CalibData: Codable, Equatable, Sendable {
        /// The calibration-data file (HDF5 here, `.pt` in the original), absolute after loading.
        public var path: String
        /// Sampling steps for calibration and the default number of inference steps.
        public var nSteps: Int
        /// Generation batch and PTQ calibration batch.
        public var batchSize: Int
        /// Number of calibration prompts (first captions of the COCO file).
        public var nSamples: Int
        /// Unused by the original too ("fix").
        public var scaleType: String?
        /// Guidance scale for calibration and the default guidance at inference.
        public var scaleValue: Double
        /// Extension: COCO-format captions file, absolute after loading. When not given, the
        /// shipped `assets/coco/captions_mixdq_default.json` is looked up (see `captionsURL()`).
        public var captions: String?
        /// Extension: image size; unset means the UNet's `sample_size * 8`.
        public var height: Int?
        public var width: Int?

        public var url: URL { URL(fileURLWithPath: path) }

        enum CodingKeys: String, CodingKey {
            case path, nSteps = "n_steps", batchSize = "batch_size", nSamples = "n_samples"
            case scaleType = "scale_type", scaleValue = "scale_value", captions, height, width
        }
    }

    public struct WeightQuantizer: Codable, Equatable, Sendable {
        public var nBits: Int
        /// Symmetric (zero point 0); absent in the original means asymmetric.
        public var sym: Bool
        /// Per output channel (dim 0) when true.
        public var channelWise: Bool
        public var scaleMethod: String
        /// Recorded only: the forward pass always rounds to nearest even.
        public var roundMode: String?

        enum CodingKeys: String, CodingKey {
            case nBits = "n_bits", sym, channelWise = "channel_wise", scaleMethod = "scale_method", roundMode = "round_mode"
        }
    }

    public struct ActivationQuantizer: Codable, Equatable, Sendable {
        public var nBits: Int
        public var channelWise: Bool
        public var scaleMethod: String
        public var roundMode: String?
        /// EMA (momentum 0.95) of min/max across calibration batches.
        public var runningStat: Bool
        /// BOS-aware cross-attention K/V quantization.
        public var bosAware: Bool
        /// Extension: repeat the EMA update once per mixed-precision bit width within a batch, as
        /// the original does (mixdq-method.md §3.5). Default false: one update per batch.
        public var emaCompatRepeat: Bool

        enum CodingKeys: String, CodingKey {
            case nBits = "n_bits", channelWise = "channel_wise", scaleMethod = "scale_method", roundMode = "round_mode"
            case runningStat = "running_stat", bosAware = "bos_aware", emaCompatRepeat = "ema_compat_repeat"
        }
    }

    public struct WeightQuant: Codable, Equatable, Sendable {
        public var quantizer: WeightQuantizer
    }

    public struct ActivationQuant: Codable, Equatable, Sendable {
        public var quantizer: ActivationQuantizer
    }

    public struct Quant: Codable, Equatable, Sendable {
        public var weight: WeightQuant
        public var activation: ActivationQuant
        /// Gradient checkpointing in transformer blocks (irrelevant without training).
        public var gradCheckpoint: Bool

        enum CodingKeys: String, CodingKey {
            case weight, activation, gradCheckpoint = "grad_checkpoint"
        }
    }

    public struct ResumeWithWQuantized: Codable, Equatable, Sendable {
        public var path: String?
    }

    public var model: Model
    /// Asserted true everywhere in the original; only conditional models are supported.
    public var conditional: Bool
    /// Candidate bit widths for mixed precision (`[2, 4, 8]`); nil means uniform precision only.
    public var mixedPrecision: [Int]?
    public var calibData: CalibData
    public var quant: Quant
    /// Unused by the original; kept for fidelity.
    public var resumeWithWQuantized: ResumeWithWQuantized?
    /// The file this config was loaded from (not part of the YAML).
    public var sourceURL: URL? = nil

    enum CodingKeys: String, CodingKey {
        case model, conditional, mixedPrecision = "mixed_precision", calibData = "calib_data", quant
        case resumeWithWQuantized = "resume_with_w_quantized"
    }

    // MARK: Loading

    public static func load(_ url: URL) throws -> MixDQConfig {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigError(file: url.path, key: nil, line: nil, message: "cannot read the file (\(FileErrorText.reason(error)))")
        }
        return try parse(yaml: text, sourceURL: url)
    }

    /// Parses YAML text as if read from `sourceURL` (relative paths resolve against its folder,
    /// errors name it).
    public static func parse(yaml: String, sourceURL: URL) throws -> MixDQConfig {
        let file = sourceURL.path
        let base = sourceURL.deletingLastPathComponent()
        let root = try YAMLMapping.document(yaml, file: file)
        try root.allowOnly(["model", "conditional", "mixed_precision", "calib_data", "quant", "resume_with_w_quantized"])

        let model = try parseModel(root.requiredMapping("model"), base: base)
        let conditional = try root.bool("conditional") ?? true
        if !conditional {
            throw root.fail("conditional", "only conditional (text-to-image) models are supported")
        }
        let mixedPrecision = try root.intList("mixed_precision")
        let calibData = try parseCalibData(root.requiredMapping("calib_data"), base: base)
        let quant = try parseQuant(root.requiredMapping("quant"))
        if let bits = mixedPrecision { try checkMixedPrecision(bits, quant: quant, root: root) }
        var resume: ResumeWithWQuantized? = nil
        if let r = try root.mapping("resume_with_w_quantized") {
            try r.allowOnly(["path"])
            resume = ResumeWithWQuantized(path: try r.string("path").map { resolve($0, base) })
        }
        var config = MixDQConfig(model: model, conditional: conditional, mixedPrecision: mixedPrecision,
                                 calibData: calibData, quant: quant, resumeWithWQuantized: resume)
        config.sourceURL = sourceURL
        return config
    }

    /// The bit widths a mixed-precision checkpoint holds parameters for. The original keeps them
    /// in a list indexed by `log2(b) - 1` (mixdq-method.md §3.3), which is only right for 2, 4
    /// and 8; it also looks the default `n_bits` up in that list.
    public static let mixedPrecisionBitWidths = [2, 4, 8]

    private static func checkMixedPrecision(_ bits: [Int], quant: Quant, root: YAMLMapping) throws {
        let allowed = mixedPrecisionBitWidths.map(String.init).joined(separator: ", ")
        if bits.isEmpty { throw root.fail("mixed_precision", "the list of bit widths is empty") }
        if let bad = bits.first(where: { !mixedPrecisionBitWidths.contains($0) }) {
            throw root.fail("mixed_precision", "bit width \(bad) is not supported (allowed: \(allowed), as in the original)")
        }
        if Set(bits).count != bits.count { throw root.fail("mixed_precision", "lists a bit width twice: \(bits)") }
        for (key, n) in [("quant.weight.quantizer.n_bits", quant.weight.quantizer.nBits),
                         ("quant.activation.quantizer.n_bits", quant.activation.quantizer.nBits)] where !bits.contains(n) {
            throw root.fail("mixed_precision", "\(bits) does not contain \(key) (\(n)); the default bit width must be one of the candidates")
        }
    }

    private static func parseModel(_ m: YAMLMapping, base: URL) throws -> Model {
        try m.allowOnly(["model_id", "cache_dir", "model_type", "adapter_id", "path"])
        let typeName = try m.requiredString("model_type")
        guard let type = ModelType(rawValue: typeName) else {
            throw m.fail("model_type", "expected 'sd' or 'sdxl', found '\(typeName)'")
        }
        return Model(modelID: try m.requiredString("model_id"), cacheDir: try m.string("cache_dir"),
                     modelType: type, adapterID: try m.string("adapter_id").map { resolveIfLocal($0, base) },
                     path: try m.string("path").map { resolve($0, base) })
    }

    private static func parseCalibData(_ m: YAMLMapping, base: URL) throws -> CalibData {
        try m.allowOnly(["path", "n_steps", "batch_size", "n_samples", "scale_type", "scale_value",
                         "captions", "height", "width"])
        func positive(_ key: String, required: Bool) throws -> Int? {
            let v: Int?
            if required { v = try m.requiredInt(key) } else { v = try m.int(key) }
            if let v, v < 1 { throw m.fail(key, "must be at least 1, found \(v)") }
            return v
        }
        func imageSide(_ key: String) throws -> Int? {
            let v = try m.int(key)
            if let v, let problem = GenerationLimits.imageSideProblem(v) { throw m.fail(key, problem) }
            return v
        }
        func bounded(_ key: String, max: Int) throws -> Int {
            let v = try positive(key, required: true)!
            if v > max { throw m.fail(key, "must be at most \(max), found \(v)") }
            return v
        }
        let captions = try m.string("captions").map { resolve($0, base) } ?? defaultCaptionsURL(near: base)?.path
        let path = resolve(try m.requiredString("path"), base)
        // calib-data writes this file and ptq reads it: a folder here would only fail after all
        // the work (at the final rename), so refuse it now.
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw m.fail("path", "\(path) is a directory; give the calibration file's path (e.g. calib.h5)")
        }
        let scaleValue = try m.requiredDouble("scale_value")
        guard scaleValue.isFinite && abs(scaleValue) <= Double(Float.greatestFiniteMagnitude) else {
            throw m.fail("scale_value", "must be a finite number, found \(scaleValue)")
        }
        return CalibData(path: path,
                         nSteps: try bounded("n_steps", max: GenerationLimits.maxSteps),
                         batchSize: try bounded("batch_size", max: GenerationLimits.maxBatchSize),
                         nSamples: try bounded("n_samples", max: GenerationLimits.maxImages),
                         scaleType: try m.string("scale_type"),
                         scaleValue: scaleValue,
                         captions: captions,
                         height: try imageSide("height"), width: try imageSide("width"))
    }

    private static func parseQuant(_ q: YAMLMapping) throws -> Quant {
        try q.allowOnly(["weight", "activation", "grad_checkpoint"])
        let w = try q.requiredMapping("weight")
        try w.allowOnly(["optimization", "quantizer"])
        try w.requireEmpty("optimization", "weight reconstruction (BRECQ/AdaRound) is not supported; leave it empty")
        let wq = try w.requiredMapping("quantizer")
        try wq.allowOnly(["n_bits", "sym", "channel_wise", "scale_method", "round_mode"])
        let weight = WeightQuantizer(nBits: try bits(wq), sym: try wq.bool("sym") ?? false,
                                     channelWise: try wq.requiredBool("channel_wise"),
                                     scaleMethod: try scaleMethod(wq), roundMode: try wq.string("round_mode"))

        let a = try q.requiredMapping("activation")
        try a.allowOnly(["optimization", "quantizer"])
        try a.requireEmpty("optimization", "activation-range optimization is not supported; leave it empty")
        let aq = try a.requiredMapping("quantizer")
        try aq.allowOnly(["n_bits", "channel_wise", "scale_method", "round_mode", "running_stat", "bos_aware",
                          "softmax", "ema_compat_repeat"])
        try aq.requireEmpty("softmax", "attention-probability (softmax) quantization is not supported; leave it empty")
        let activation = ActivationQuantizer(nBits: try bits(aq), channelWise: try aq.requiredBool("channel_wise"),
                                             scaleMethod: try scaleMethod(aq), roundMode: try aq.string("round_mode"),
                                             runningStat: try aq.bool("running_stat") ?? false,
                                             bosAware: try aq.bool("bos_aware") ?? false,
                                             emaCompatRepeat: try aq.bool("ema_compat_repeat") ?? false)
        return Quant(weight: WeightQuant(quantizer: weight), activation: ActivationQuant(quantizer: activation),
                     gradCheckpoint: try q.bool("grad_checkpoint") ?? false)
    }

    private static func bits(_ m: YAMLMapping) throws -> Int {
        let n = try m.requiredInt("n_bits")
        guard (2...8).contains(n) else { throw m.fail("n_bits", "must be within 2...8, found \(n)") }
        return n
    }

    private static func scaleMethod(_ m: YAMLMapping) throws -> String {
        let s = try m.requiredString("scale_method")
        // 'grid_search_lp' exists in the original but no config uses it; only min/max is implemented.
        guard s == "min_max" else { throw m.fail("scale_method", "only 'min_max' is supported, found '\(s)'") }
        return s
    }

    /// Absolute paths stay; `~` expands; relative paths resolve against the config's folder.
    static func resolve(_ path: String, _ base: URL) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL.path }
        return base.appendingPathComponent(expanded).standardizedFileURL.path
    }

    /// `path` resolved as `resolve` does when something exists there, else `path` unchanged (a
    /// Hub id such as `latent-consistency/lcm-lora-sdv1-5`, reported when used).
    static func resolveIfLocal(_ path: String, _ base: URL) -> String {
        let resolved = resolve(path, base)
        return FileManager.default.fileExists(atPath: resolved) ? resolved : path
    }

    // MARK: Adapter

    /// The LoRA file or folder `model.adapter_id` names, nil when unset; a value that is not a
    /// local file or folder (a Hugging Face Hub id) is an error saying what to pass: nothing is
    /// downloaded here.
    public func adapterURL() throws -> URL? {
        guard let id = model.adapterID else { return nil }
        if id.hasPrefix("/"), FileManager.default.fileExists(atPath: id) { return URL(fileURLWithPath: id) }
        throw ConfigError(file: sourceURL?.path ?? "<config>", key: "model.adapter_id", line: nil,
                          message: "'\(id)' is not a local file or folder (a Hugging Face Hub id?); nothing is downloaded: "
                              + "download the LoRA's pytorch_lora_weights.safetensors and set adapter_id to that file "
                              + "or its folder (relative to the config's folder)")
    }

    // MARK: Captions

    /// Where the shipped default captions live, relative to the repository root.
    public static let defaultCaptionsRelativePath = "assets/coco/captions_mixdq_default.json"

    /// Finds the shipped captions file: in `folder` or one of its parents, then the current
    /// directory or one of its parents, then the source checkout this binary was built from.
    public static func defaultCaptionsURL(near folder: URL?) -> URL? {
        var starts: [URL] = []
        if let folder { starts.append(folder) }
        starts.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        // Sources/MixDQIO/MixDQConfig.swift -> the repository root.
        starts.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent())
        for start in starts {
            var dir = start.standardizedFileURL
            while true {
                let candidate = dir.appendingPathComponent(defaultCaptionsRelativePath)
                if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
                let parent = dir.deletingLastPathComponent()
                if parent.path == dir.path { break }
                dir = parent
            }
        }
        return nil
    }

    /// The captions file to take prompts from, or an error naming the config when neither
    /// `calib_data.captions` nor the shipped default can be found.
    public func captionsURL() throws -> URL {
        if let c = calibData.captions { return URL(fileURLWithPath: c) }
        throw ConfigError(file: sourceURL?.path ?? "<config>", key: "calib_data.captions", line: nil,
                          message: "no captions file given and \(Self.defaultCaptionsRelativePath) was not found; "
                              + "set calib_data.captions to a COCO captions json")
    }

    // MARK: Writing

    /// The config as YAML with the original's keys and absolute paths (sorted keys, so the
    /// output is deterministic). Loading it back gives an equal config.
    public func yamlString() throws -> String {
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = true
        return try encoder.encode(self)
    }
}
