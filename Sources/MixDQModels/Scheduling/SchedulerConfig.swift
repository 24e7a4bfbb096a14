import Foundation

/// Errors from reading or using a `scheduler/scheduler_config.json`.
public enum SchedulerError: Error, CustomStringConvertible, LocalizedError {
    case unreadable(path: String, underlying: String)
    case invalidJSON(path: String, underlying: String)
    case unsupportedClass(name: String, path: String)
    case unsupportedValue(key: String, value: String, path: String)
    case invalidStepCount(Int)
    case tooManyStepsForLCM(steps: Int, originalInferenceSteps: Int)
    case timestepOutOfRange(timestep: Int, numTrainTimesteps: Int)

    public var description: String {
        switch self {
        case let .unreadable(path, underlying):
            return "cannot read scheduler config \(path): \(underlying)"
        case let .invalidJSON(path, underlying):
            return "scheduler config \(path) is not a valid scheduler_config.json: \(underlying)"
        case let .unsupportedClass(name, path):
            let supported = SchedulerConfig.ClassName.allCases.map(\.rawValue).joined(separator: ", ")
            return "scheduler class \"\(name)\" in \(path) is not supported (supported: \(supported))"
        case let .unsupportedValue(key, value, path):
            return "unsupported value \(value) for \"\(key)\" in \(path)"
        case let .tooManyStepsForLCM(n, original):
            return "LCMScheduler takes at most original_inference_steps (\(original)) inference steps, got \(n)"
        case let .timestepOutOfRange(t, total):
            return "the schedule reaches timestep \(t), outside 0..<num_train_timesteps (\(total)); lower steps_offset"
        case let .invalidStepCount(n):
            return "number of inference steps must be between 1 and num_train_timesteps, got \(n)"
        }
    }

    public var errorDescription: String? { description }
}

/// diffusers' `scheduler_config.json` for the Euler, DDIM and LCM schedulers (snake_case keys).
///
/// Absent keys take the diffusers constructor defaults of the named class (`timestep_spacing`
/// "linspace" for Euler, "leading" for DDIM and LCM; `clip_sample` true for DDIM only).
public struct SchedulerConfig: Decodable, Equatable, Sendable {
    public enum ClassName: String, Decodable, Sendable, CaseIterable {
        case eulerAncestralDiscrete = "EulerAncestralDiscreteScheduler"
        case eulerDiscrete = "EulerDiscreteScheduler"
        case ddim = "DDIMScheduler"
        case lcm = "LCMScheduler"
    }
    public enum BetaSchedule: String, Decodable, Sendable, CaseIterable {
        case linear
        case scaledLinear = "scaled_linear"
    }
    /// What the UNet predicts: the noise, v = α·ε − σ·x₀ (in diffusers' scaled form), or x₀ itself.
    public enum PredictionType: String, Decodable, Sendable, CaseIterable {
        case epsilon
        case vPrediction = "v_prediction"
        case sample
    }
    public enum TimestepSpacing: String, Decodable, Sendable, CaseIterable {
        case linspace, leading, trailing
    }
    public enum FinalSigmasType: String, Decodable, Sendable, CaseIterable {
        case zero
        case sigmaMin = "sigma_min"
    }

    public var className: ClassName
    public var numTrainTimesteps: Int = 1000
    public var betaStart: Double = 0.0001
    public var betaEnd: Double = 0.02
    public var betaSchedule: BetaSchedule = .linear
    public var trainedBetas: [Double]? = nil
    public var predictionType: PredictionType = .epsilon
    public var timestepSpacing: TimestepSpacing = .linspace
    public var stepsOffset: Int = 0
    /// EulerDiscreteScheduler only.
    public var finalSigmasType: FinalSigmasType = .zero
    /// DDIM and LCM: clamp x0 to ±`clipSampleRange` (DDIM's default true, LCM's false).
    public var clipSample: Bool = false
    public var clipSampleRange: Double = 1.0
    /// DDIM and LCM: ᾱ after the last step is 1 (else ᾱ(0)).
    public var setAlphaToOne: Bool = true
    /// LCM: the distillation schedule's length the inference timesteps are taken from.
    public var originalInferenceSteps: Int = 50
    /// LCM: timestep multiplier in the boundary-condition scalings c_skip, c_out.
    public var timestepScaling: Double = 10.0

    /// The stabilityai/sdxl-turbo `scheduler/scheduler_config.json` (sdxl-architecture.md §1.2).
    public static let sdxlTurbo = SchedulerConfig(
        className: .eulerAncestralDiscrete, numTrainTimesteps: 1000, betaStart: 0.00085, betaEnd: 0.012,
        betaSchedule: .scaledLinear, trainedBetas: nil, predictionType: .epsilon, timestepSpacing: .trailing,
        stepsOffset: 1)

    public init(className: ClassName, numTrainTimesteps: Int = 1000, betaStart: Double = 0.0001,
                betaEnd: Double = 0.02, betaSchedule: BetaSchedule = .linear, trainedBetas: [Double]? = nil,
                predictionType: PredictionType = .epsilon, timestepSpacing: TimestepSpacing = .linspace,
                stepsOffset: Int = 0, finalSigmasType: FinalSigmasType = .zero) {
        self.className = className
        self.numTrainTimesteps = numTrainTimesteps
        self.betaStart = betaStart
        self.betaEnd = betaEnd
        self.betaSchedule = betaSchedule
        self.trainedBetas = trainedBetas
        self.predictionType = predictionType
        self.timestepSpacing = timestepSpacing
        self.stepsOffset = stepsOffset
        self.finalSigmasType = finalSigmasType
    }

    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case predictionType = "prediction_type"
        case timestepSpacing = "timestep_spacing"
        case stepsOffset = "steps_offset"
        case finalSigmasType = "final_sigmas_type"
        case clipSample = "clip_sample", clipSampleRange = "clip_sample_range", setAlphaToOne = "set_alpha_to_one"
        case originalInferenceSteps = "original_inference_steps", timestepScaling = "timestep_scaling"
        case thresholding
        // Options whose non-default values this port does not implement.
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case interpolationType = "interpolation_type"
        case useKarrasSigmas = "use_karras_sigmas"
        case useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas"
        case timestepType = "timestep_type"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .className)
        guard let cls = ClassName(rawValue: name) else {
            throw SchedulerError.unsupportedClass(name: name, path: "")
        }
        className = cls
        numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps) ?? 1000
        betaStart = try c.decodeIfPresent(Double.self, forKey: .betaStart) ?? 0.0001
        betaEnd = try c.decodeIfPresent(Double.self, forKey: .betaEnd) ?? 0.02
        betaSchedule = try Self.decodeEnum(c, .betaSchedule) ?? .linear
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        predictionType = try Self.decodeEnum(c, .predictionType) ?? .epsilon
        let isEuler = cls == .eulerDiscrete || cls == .eulerAncestralDiscrete
        timestepSpacing = try Self.decodeEnum(c, .timestepSpacing) ?? (isEuler ? .linspace : .leading)
        stepsOffset = try c.decodeIfPresent(Int.self, forKey: .stepsOffset) ?? 0
        finalSigmasType = try Self.decodeEnum(c, .finalSigmasType) ?? .zero
        // DDIM/LCM keys; Euler folders may carry some (sdxl-turbo has set_alpha_to_one), unused there.
        if !isEuler {
            clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample) ?? (cls == .ddim)
            clipSampleRange = try c.decodeIfPresent(Double.self, forKey: .clipSampleRange) ?? 1.0
            setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne) ?? true
            originalInferenceSteps = try c.decodeIfPresent(Int.self, forKey: .originalInferenceSteps) ?? 50
            timestepScaling = try c.decodeIfPresent(Double.self, forKey: .timestepScaling) ?? 10.0
            if try c.decodeIfPresent(Bool.self, forKey: .thresholding) == true {
                throw SchedulerError.unsupportedValue(key: CodingKeys.thresholding.rawValue, value: "true (dynamic thresholding is not implemented)", path: "")
            }
        }
        if try c.decodeIfPresent(Bool.self, forKey: .rescaleBetasZeroSnr) == true {
            throw SchedulerError.unsupportedValue(key: CodingKeys.rescaleBetasZeroSnr.rawValue, value: "true", path: "")
        }
        for key in [CodingKeys.useKarrasSigmas, .useExponentialSigmas, .useBetaSigmas]
        where try c.decodeIfPresent(Bool.self, forKey: key) == true {
            throw SchedulerError.unsupportedValue(key: key.rawValue, value: "true", path: "")
        }
        if let v = try c.decodeIfPresent(String.self, forKey: .interpolationType), v != "linear" {
            throw SchedulerError.unsupportedValue(key: CodingKeys.interpolationType.rawValue, value: "\"\(v)\"", path: "")
        }
        if let v = try c.decodeIfPresent(String.self, forKey: .timestepType), v != "discrete" {
            throw SchedulerError.unsupportedValue(key: CodingKeys.timestepType.rawValue, value: "\"\(v)\"", path: "")
        }
        try validate()
    }

    /// Largest `num_train_timesteps` accepted: far above any diffusion model's 1000, small enough
    /// that the noise tables stay a few megabytes.
    public static let maxTrainTimesteps = 100_000

    /// Checks the values the noise schedule is built from, so that every beta lies in (0, 1) and
    /// every sigma is finite; errors name the key (the loader adds the file).
    func validate() throws {
        func fail(_ key: CodingKeys, _ value: String) throws -> Never {
            throw SchedulerError.unsupportedValue(key: key.rawValue, value: value, path: "")
        }
        if numTrainTimesteps < 2 || numTrainTimesteps > Self.maxTrainTimesteps {
            try fail(.numTrainTimesteps, "\(numTrainTimesteps) (must be in 2...\(Self.maxTrainTimesteps))")
        }
        if stepsOffset < 0 || stepsOffset >= numTrainTimesteps {
            try fail(.stepsOffset, "\(stepsOffset) (must be in 0..<num_train_timesteps)")
        }
        if !(clipSampleRange > 0 && clipSampleRange.isFinite) {
            try fail(.clipSampleRange, "\(clipSampleRange) (must be a finite positive number)")
        }
        // Only LCM reads it (others keep the default 50, which a short training schedule may undercut).
        if className == .lcm, originalInferenceSteps < 1 || originalInferenceSteps > numTrainTimesteps {
            try fail(.originalInferenceSteps, "\(originalInferenceSteps) (must be in 1...num_train_timesteps)")
        }
        if !(timestepScaling >= 0 && timestepScaling <= 1e6) {
            try fail(.timestepScaling, "\(timestepScaling) (must be in 0...1e6)")
        }
        if let betas = trainedBetas {
            if betas.count != numTrainTimesteps {
                try fail(.trainedBetas, "a list of \(betas.count) values (num_train_timesteps is \(numTrainTimesteps))")
            }
            if let i = betas.firstIndex(where: { !($0 > 0 && $0 < 1) }) {
                try fail(.trainedBetas, "\(betas[i]) at index \(i) (every beta must be in the open interval (0, 1))")
            }
        } else {
            for (key, v) in [(CodingKeys.betaStart, betaStart), (.betaEnd, betaEnd)] where !(v > 0 && v < 1) {
                try fail(key, "\(v) (must be in the open interval (0, 1))")
            }
            if betaStart > betaEnd { try fail(.betaStart, "\(betaStart) (greater than beta_end \(betaEnd))") }
        }
        // Betas near 1 over many steps drive alphas_cumprod to 0 in float32: sigma becomes infinite.
        let schedule = NoiseSchedule(config: self)
        if let t = schedule.sigmaTable.firstIndex(where: { !$0.isFinite }) {
            try fail(trainedBetas != nil ? .trainedBetas : .betaEnd,
                     "\(trainedBetas != nil ? "(list)" : "\(betaEnd)") (alphas_cumprod underflows to 0 at timestep \(t), so sigma is infinite)")
        }
    }

    /// Decodes a string enum; an unknown string becomes an error naming the key, the value and the
    /// values this port accepts.
    private static func decodeEnum<E: RawRepresentable & CaseIterable>(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> E?
    where E.RawValue == String {
        guard let raw = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let value = E(rawValue: raw) else {
            let accepted = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw SchedulerError.unsupportedValue(key: key.rawValue, value: "\"\(raw)\" (supported: \(accepted))", path: "")
        }
        return value
    }

    /// Reads `scheduler_config.json`, or `scheduler/scheduler_config.json` inside a model folder.
    /// `overridingClass` reads the file as that class, as diffusers' `Class.from_config(config)`
    /// does (the original's switch to LCMScheduler when a LoRA adapter is given): the schedule keys
    /// carry over, the class's own keys take the file's values where present, else its defaults.
    public static func load(from url: URL, overridingClass: ClassName? = nil) throws -> SchedulerConfig {
        var file = url
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            let nested = url.appendingPathComponent("scheduler/scheduler_config.json")
            file = FileManager.default.fileExists(atPath: nested.path) ? nested : url.appendingPathComponent("scheduler_config.json")
        }
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw SchedulerError.unreadable(path: file.path, underlying: error.localizedDescription)
        }
        guard let overridingClass else { return try decode(data, path: file.path) }
        guard var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SchedulerError.invalidJSON(path: file.path, underlying: "not a JSON object")
        }
        object["_class_name"] = overridingClass.rawValue
        return try decode(try JSONSerialization.data(withJSONObject: object), path: file.path)
    }

    /// Decodes config JSON; `path` is only used in error messages.
    public static func decode(_ data: Data, path: String = "scheduler_config.json") throws -> SchedulerConfig {
        do {
            return try JSONDecoder().decode(SchedulerConfig.self, from: data)
        } catch let SchedulerError.unsupportedClass(name, _) {
            throw SchedulerError.unsupportedClass(name: name, path: path)
        } catch let SchedulerError.unsupportedValue(key, value, _) {
            throw SchedulerError.unsupportedValue(key: key, value: value, path: path)
        } catch let error as DecodingError {
            throw SchedulerError.invalidJSON(path: path, underlying: Self.describe(error))
        } catch {
            throw SchedulerError.invalidJSON(path: path, underlying: "\(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func keyPath(_ ctx: DecodingError.Context) -> String {
            ctx.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, _): return "missing key \"\(key.stringValue)\""
        case let .typeMismatch(_, ctx): return "wrong type for \"\(keyPath(ctx))\": \(ctx.debugDescription)"
        case let .valueNotFound(_, ctx): return "null value for \"\(keyPath(ctx))\""
        case let .dataCorrupted(ctx): return ctx.debugDescription
        @unknown default: return "\(error)"
        }
    }

    /// Builds the scheduler this config names, with its timesteps set for `numInferenceSteps`.
    public func makeScheduler(numInferenceSteps: Int) throws -> any Scheduler {
        switch className {
        case .eulerAncestralDiscrete:
            return try EulerAncestralDiscreteScheduler(config: self, numInferenceSteps: numInferenceSteps)
        case .eulerDiscrete:
            return try EulerDiscreteScheduler(config: self, numInferenceSteps: numInferenceSteps)
        case .ddim:
            return try DDIMScheduler(config: self, numInferenceSteps: numInferenceSteps)
        case .lcm:
            return try LCMScheduler(config: self, numInferenceSteps: numInferenceSteps)
        }
    }
}
