import Foundation
import CKernels
import MixDQCompute

/// The quantization state of one Conv2d / Linear (a MixDQ quantization site), named by its
/// diffusers path: weight parameters for every candidate bit width, activation observers, the
/// bit widths in use, and which of weight / activation quantization is on.
public final class QuantizedLayer {
    public let layer: WeightLayer
    /// Path, role, geometry and split point: what every backend builds from.
    public let site: QuantSite
    public let settings: QuantSettings
    /// Column ranges of one weight row that are quantized separately (two for split shortcuts).
    public var weightParts: [Range<Int>] { site.weightParts }
    /// Input channel ranges with their own activation quantizer (two for split shortcuts).
    public var activationParts: [Range<Int>] { site.activationParts }
    var rowLength: Int { site.rowLength }
    /// `[part][bit index]` per-output-channel parameters; empty until `calibrateWeights()`.
    public private(set) var weightParameters: [[ChannelParameters]] = []
    public let observers: [ActivationObserver]
    public var weightBits: Int { didSet { precondition(settings.bitWidths.contains(weightBits)) } }
    public var activationBits: Int { didSet { precondition(settings.bitWidths.contains(activationBits)) } }
    public var weightEnabled = false
    public var activationEnabled = false
    /// While true, every call folds its input range into the observers before quantizing.
    public var calibratingActivations = false
    /// BOS-aware: token 0 of the text context runs with FP weights and FP input and stays out of
    /// the activation statistics (only `attn2.to_k` / `attn2.to_v`).
    public let bosAware: Bool
    private var quantizedWeights: [Int: Tensor] = [:]
    /// Keep fake-quantized weights between calls (fast; one extra fp32 copy per bit width used).
    /// Off, each call quantizes into a temporary (memory-light, for full-size calibration).
    public var cachesQuantizedWeights = true

    public init(_ layer: WeightLayer, settings: QuantSettings) {
        self.layer = layer
        self.settings = settings
        site = QuantSite(layer)
        observers = site.activationParts.map { _ in
            ActivationObserver(bitWidths: settings.bitWidths, runningStat: settings.runningStat,
                               emaCompatRepeat: settings.emaCompatRepeat)
        }
        weightBits = settings.weightBits
        activationBits = settings.activationBits
        bosAware = settings.bosAware && layer.role == .crossAttentionKeyValue
    }

    public var path: String { layer.path }
    public var isSplit: Bool { site.isSplit }

    /// Per-output-channel parameters for every bit width from the FP weight (data-independent).
    public func calibrateWeights() throws {
        guard let w = layer.masterWeight else { throw QuantStateError(path: path, reason: "the FP weight was released before weight calibration") }
        weightParameters = weightParts.map { cols in
            settings.bitWidths.map {
                WeightQuantization.parameters(w, columns: cols, rowLength: rowLength, bits: $0, symmetric: settings.weightSymmetric)
            }
        }
        quantizedWeights = [:]
    }

    /// Forgets cached fake-quantized weights (the frozen kernel holds what it needs).
    func releaseWeightCopies() { quantizedWeights = [:] }

    public func loadWeightParameters(_ p: [[ChannelParameters]]) {
        precondition(p.count == weightParts.count)
        weightParameters = p
        quantizedWeights = [:]
    }

    /// The fake-quantized weight at `bits` (cached: computed once per bit width).
    public func quantizedWeight(bits: Int) throws -> Tensor {
        if let w = quantizedWeights[bits] { return w }
        guard let w = layer.masterWeight else { throw FrozenLayerError(path: path) }
        guard !weightParameters.isEmpty else { throw QuantStateError(path: path, reason: "weight parameters are not calibrated") }
        let k = settings.bitWidths.firstIndex(of: bits)!
        let out = Tensor(uninitializedShape: w.shape)
        for (part, cols) in weightParts.enumerated() {
            WeightQuantization.fakeQuantize(w, into: out, columns: cols, rowLength: rowLength,
                                            parameters: weightParameters[part][k], bits: bits, symmetric: settings.weightSymmetric)
        }
        if cachesQuantizedWeights { quantizedWeights[bits] = out }
        return out
    }

    /// Observes (when calibrating) and fake-quantizes `rows` rows of `channels` values, part by part.
    /// `skipRow` excludes rows from the statistics (BOS tokens); they are copied unquantized.
    func quantizeActivation(_ x: Tensor, channels: Int, skipRow: ((Int) -> Bool)? = nil) throws -> Tensor {
        let rows = x.count / channels
        let y = Tensor(uninitializedShape: x.shape)
        for (part, range) in activationParts.enumerated() {
            let observer = observers[part]
            if calibratingActivations {
                var lo = Float.infinity, hi = -Float.infinity
                if range.count == channels && skipRow == nil {
                    mdq_minmax(x.data, x.count, &lo, &hi)
                } else {
                    for r in 0..<rows where !(skipRow?(r) ?? false) {
                        var a: Float = 0, b: Float = 0
                        mdq_minmax(x.data + r * channels + range.lowerBound, range.count, &a, &b)
                        lo = min(lo, a); hi = max(hi, b)
                    }
                }
                if lo <= hi { observer.observe(min: lo, max: hi) }
            }
            guard observer.isCalibrated else {
                // Only while calibrating can a part still lack a range (every input so far held NaN or
                // Inf): it passes through unquantized and `QuantCheckpoint.save` names the layer. Outside
                // calibration the checkpoint loader guarantees every range.
                guard calibratingActivations else { throw QuantStateError(path: path, reason: "activation quantizer used before calibration") }
                for r in 0..<rows {
                    let off = r * channels + range.lowerBound
                    (y.data + off).update(from: x.data + off, count: range.count)
                }
                continue
            }
            let (delta, zp) = observer.parameters(bits: activationBits)
            if range.count == channels {
                UniformQuantizer.fakeQuantize(x.data, y.data, count: x.count, delta: delta, zeroPoint: zp,
                                              bits: activationBits, symmetric: false)
            } else {
                for r in 0..<rows {
                    let off = r * channels + range.lowerBound
                    UniformQuantizer.fakeQuantize(x.data + off, y.data + off, count: range.count, delta: delta,
                                                  zeroPoint: zp, bits: activationBits, symmetric: false)
                }
            }
        }
        if let skipRow {
            for r in 0..<rows where skipRow(r) { (y.data + r * channels).update(from: x.data + r * channels, count: channels) }
        }
        return y
    }
}

/// A quantization step asked of a layer whose state cannot serve it (uncalibrated, weight released).
public struct QuantStateError: Error, CustomStringConvertible, LocalizedError {
    public let path: String, reason: String
    public var description: String { "\(path): \(reason)" }
    public var errorDescription: String? { description }
}
