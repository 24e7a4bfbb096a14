import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQQuant

/// `ptq` (the original ptq.py), as explicit steps: (1) per-channel weight parameters for every bit
/// width, (2) activation ranges over the calibration set with the weights already fake-quantized
/// upstream, in seeded shuffled batches, (3) the quant checkpoint.
public struct PostTrainingQuantization {
    public var settings: QuantSettings
    public var batchSize: Int
    public var nSamples: Int?
    public var seed: UInt64

    /// Models with at least this many parameters calibrate without cached fake-quantized weights.
    public static let weightCacheLimit = 200_000_000

    public init(settings: QuantSettings, batchSize: Int, nSamples: Int?, seed: UInt64) {
        self.settings = settings; self.batchSize = batchSize; self.nSamples = nSamples; self.seed = seed
    }

    /// Fisher-Yates with torch's mt19937, seeded: the calibration order.
    public static func shuffledIndices(_ n: Int, seed: UInt64) -> [Int] {
        var rng = MT19937(seed: seed)
        var idx = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = Int(UInt64(rng.next()) % UInt64(i + 1))
                idx.swapAt(i, j)
            }
        }
        return idx
    }

    @discardableResult
    public func run(unet: UNet2DConditionModel, data: CalibrationData, checkpoint: URL, log: RunLog,
                    metadata: [String: String] = [:]) throws -> QuantSimulator {
        let sim = try QuantSimulator(registry: unet.registry, settings: settings)
        // A cached fake-quantized copy of every weight doubles a full-size UNet's memory (10 GB more for
        // SDXL); calibration runs a few batches, so large models quantize their weights per call instead.
        let cache = unet.parameterCount < PostTrainingQuantization.weightCacheLimit
        sim.setCachesQuantizedWeights(cache)
        if !cache { log.info("fake-quantized weights computed per call (\(unet.parameterCount) parameters: no cached copies)") }
        log.info("quantization sites: \(sim.layers.count) (\(sim.layers.filter { $0.layer is Conv2d }.count) Conv2d, \(sim.layers.filter { $0.layer is Linear }.count) Linear); split shortcuts: \(sim.layers.filter(\.isSplit).count); BOS-aware K/V: \(sim.layers.filter(\.bosAware).count)")
        log.info("weights: \(settings.weightBits)-bit default, per channel, symmetric=\(settings.weightSymmetric); activations: \(settings.activationBits)-bit default, per tensor, running_stat=\(settings.runningStat) (momentum \(QuantSettings.emaMomentum)); parameters for bit widths \(settings.bitWidths)")
        log.info(settings.emaCompatRepeat
                 ? "EMA: original's repeated update (once per bit width per batch; ema_compat_repeat: true)"
                 : "EMA: one update per batch (clean; set quant.activation.quantizer.ema_compat_repeat: true for the original's quirk)")
        try sim.calibrateWeights()
        log.info("weight parameters done")

        sim.setQuantState(weight: true, activation: true)
        sim.setCalibratingActivations(true)
        let order = PostTrainingQuantization.shuffledIndices(data.count, seed: seed)
        let batches = data.count / batchSize
        guard batches > 0 else {
            throw QuantSettings.Invalid(description: "calibration set has \(data.count) row(s), fewer than calib_data.batch_size \(batchSize)")
        }
        var meter = ProgressMeter(total: batches, label: "activation calibration batches")
        for k in 0..<batches {
            let b = data.batch(Array(order[(k * batchSize)..<((k + 1) * batchSize)]))
            _ = try unet(b)
            log.info(meter.advance(by: 1))
        }
        sim.setCalibratingActivations(false)
        var meta = metadata
        meta["calibration_rows"] = "\(batches * batchSize) of \(data.count)"
        meta["calibration_seed"] = "\(seed)"
        try QuantCheckpoint.save(sim, to: checkpoint, metadata: meta)
        log.info("quant checkpoint: \(checkpoint.path)")
        return sim
    }
}

/// How `infer` sets up the simulator (the original quant_txt2img.py's order of operations).
public struct QuantizedInferenceSetup {
    public var checkpoint: URL
    public var settings: QuantSettings
    public var weightBits: BitConfig?
    public var activationBits: BitConfig?
    public var actProtect: [String]
    /// Where the protect list came from (named in errors).
    public var actProtectSource = "act-protect list"
    public var quantizeWeights: Bool
    public var quantizeActivations: Bool
    /// Which backend runs the quantized UNet (`--backend`).
    public var backend: BackendChoice = .fake
    /// What the int8 backend runs A16 and FP layers in (`--precision`).
    public var floatPrecision: Precision = .fp32

    public init(checkpoint: URL, settings: QuantSettings, weightBits: BitConfig?, activationBits: BitConfig?,
                actProtect: [String], quantizeWeights: Bool, quantizeActivations: Bool) {
        self.checkpoint = checkpoint; self.settings = settings; self.weightBits = weightBits
        self.activationBits = activationBits; self.actProtect = actProtect
        self.quantizeWeights = quantizeWeights; self.quantizeActivations = quantizeActivations
    }

    /// Installs the simulator on a freshly loaded UNet and returns it.
    @discardableResult
    public func apply(to unet: UNet2DConditionModel, log: RunLog?) throws -> QuantSimulator {
        let sim = try QuantSimulator(registry: unet.registry, settings: settings)
        try QuantCheckpoint.load(checkpoint, into: sim)
        sim.setQuantState(weight: quantizeWeights, activation: quantizeActivations)
        if activationBits != nil {
            // With activation MP the protected layers run fully FP, weights too (original, 2024-07-10).
            try sim.protect(actProtect, source: actProtectSource)
        }
        if let weightBits { try sim.applyWeightBits(weightBits) }
        if let activationBits { try sim.applyActivationBits(activationBits) }
        var wHist: [Int: Int] = [:], aHist: [Int: Int] = [:]
        for l in sim.layers {
            if l.weightEnabled { wHist[l.weightBits, default: 0] += 1 }
            if l.activationEnabled { aHist[l.activationBits, default: 0] += 1 }
        }
        func show(_ h: [Int: Int]) -> String { h.isEmpty ? "off" : h.keys.sorted().map { "\($0)-bit: \(h[$0]!)" }.joined(separator: ", ") }
        log?.info("quantized UNet: weights \(show(wHist)); activations \(show(aHist)); FP-protected \(actProtect.count); of \(sim.layers.count) layers")
        return sim
    }

    /// `apply`, then the chosen backend's kernels (deployed; bits fixed from here on).
    @discardableResult
    public func deploy(to unet: UNet2DConditionModel, log: RunLog?) throws -> QuantSimulator {
        let sim = try apply(to: unet, log: log)
        try weightBits?.checkCovers(sim.paths)
        try activationBits?.checkCovers(sim.paths, except: Set(actProtect))
        let (backend, note) = try backend.resolve(for: sim, floatPrecision: floatPrecision)
        if let note { log?.info(note) } else { log?.info("backend: \(backend.name)") }
        if backend.name == "fake" {
            // Bits are fixed for inference: keep one fake-quantized weight per layer, drop the FP ones.
            try sim.freezeWeights()
        } else {
            try sim.deploy(backend)
        }
        return sim
    }
}
