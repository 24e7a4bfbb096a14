import Foundation
import MixDQCompute
import MixDQModels
import MixDQQuant

/// Quality and cost of MixDQ fake quantization on one UNet: output SQNR against FP for a few
/// weight/activation settings, with and without BOS-aware K/V, and fake-quant time against FP.
public struct QuantizationReport {
    public struct Row {
        public let setting: String
        public let bosAware: Bool
        public let sqnrDB: Double
    }

    /// Calibration and evaluation rows (disjoint).
    public var calibration: [UNetInputs]
    public var evaluation: [UNetInputs]
    public var bitWidths: [Int] = [2, 4, 8]

    public init(calibration: [UNetInputs], evaluation: [UNetInputs]) {
        self.calibration = calibration; self.evaluation = evaluation
    }

    /// `10 log10(Σ y² / Σ (ŷ − y)²)` over all outputs (mixdq-method.md §6.3).
    public static func sqnr(_ got: [Tensor], _ ref: [Tensor]) -> Double {
        var s = 0.0, n = 0.0
        for (g, r) in zip(got, ref) {
            for i in 0..<r.count {
                let y = Double(r.data[i]), d = Double(g.data[i]) - y
                s += y * y; n += d * d
            }
        }
        return 10 * log10(s / max(n, 1e-300))
    }

    /// Settings measured: (label, weight bits or nil = FP, activation bits or nil = FP).
    public static let settings: [(String, Int?, Int?)] = [("W8A8", 8, 8), ("W4A8", 4, 8), ("W8A16", 8, nil)]

    public func measure(_ unet: UNet2DConditionModel, cacheWeights: Bool, log: (String) -> Void) throws -> [Row] {
        let reference = try evaluation.map { try unet($0) }
        var rows: [Row] = []
        for bos in [true, false] {
            let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings(bitWidths: bitWidths, bosAware: bos))
            sim.setCachesQuantizedWeights(cacheWeights)
            try sim.calibrateWeights()
            sim.setQuantState(weight: true, activation: true)
            sim.setCalibratingActivations(true)
            for (i, x) in calibration.enumerated() {
                _ = try unet(x)
                log("calibrated batch \(i + 1)/\(calibration.count) (BOS-aware \(bos))")
            }
            sim.setCalibratingActivations(false)
            for (label, w, a) in QuantizationReport.settings {
                sim.setQuantState(weight: w != nil, activation: a != nil)
                for l in sim.layers { l.weightBits = w ?? 8; l.activationBits = a ?? 8 }
                let out = try evaluation.map { try unet($0) }
                let row = Row(setting: label, bosAware: bos, sqnrDB: QuantizationReport.sqnr(out, reference))
                log(String(format: "%@ BOS-aware %@: SQNR %.2f dB", label as NSString, bos ? "on " : "off", row.sqnrDB))
                rows.append(row)
            }
            sim.uninstall()
        }
        return rows
    }

    public static func medianTime(runs: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()   // warm-up: packs weights, compiles primitives
        var t: [Double] = []
        for _ in 0..<runs { let s = Date(); try body(); t.append(Date().timeIntervalSince(s)) }
        return t.sorted()[t.count / 2]
    }

    /// Median wall time of W8A8 fake-quant forwards with weights frozen at 8 bit (the FP weights are
    /// released, so this comes last). Compare with the FP time of the inference-packed model.
    public func timeFrozenW8A8(_ unet: UNet2DConditionModel, runs: Int) throws -> Double {
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings(bitWidths: bitWidths))
        sim.setCachesQuantizedWeights(false)
        try sim.calibrateWeights()
        sim.setQuantState(weight: true, activation: true)
        sim.setCalibratingActivations(true)
        _ = try unet(calibration[0])
        sim.setCalibratingActivations(false)
        try sim.freezeWeights()
        return try QuantizationReport.medianTime(runs: runs) { _ = try unet(evaluation[0]) }
    }
}
