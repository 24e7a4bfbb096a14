import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQQuant

/// Quality-layer sensitivity (mixdq-method.md §6.3): SQNR in dB of the UNet output over every
/// calibration row, in one batch, against the file's stored FP `outputs`.
public final class QualitySensitivity {
    public let sim: QuantSimulator
    public let cache: FPStageCache
    public let reference: Tensor
    /// FP UNet vs the stored outputs (the original logged 83.8 dB): a sanity check of the inputs.
    public let fpSQNR: Double

    public init(unet: UNet2DConditionModel, sim: QuantSimulator, calibration: URL, cacheBudgetBytes: Int) throws {
        self.sim = sim
        let rows = try CalibrationRows.load(calibration)
        reference = rows.outputs
        cache = try FPStageCache(unet: unet, inputs: rows.inputs, budgetBytes: cacheBudgetBytes)
        fpSQNR = try SQNR.decibels(cache.fpOutput, reference: reference)
    }

    /// `[SQNR@b for b in bits]` with only `path` quantized (weight-only or act-only).
    public func measure(_ path: String, type: SensitivityType, bits: [Int]) throws -> [Double] {
        guard let layer = sim[path] else { throw SensitivityError("layer '\(path)' is not in the model") }
        return try bits.map { b in
            let db = try LayerPerturbation.withLayer(layer, type, bits: b) {
                try SQNR.decibels(try cache.output(perturbing: path), reference: reference)
            }
            guard db.isFinite else {
                throw SensitivityError("layer '\(path)' at \(b) bits (\(type.rawValue)): the output equals the reference exactly, so the SQNR is infinite")
            }
            return db
        }
    }
}

/// Every calibration row as one UNet batch, with the stored FP outputs (`outputs [T,N,4,h,w]`,
/// flattened like the inputs).
public struct CalibrationRows {
    public let inputs: UNetInputs
    public let outputs: Tensor

    public static func load(_ url: URL) throws -> CalibrationRows {
        let data = try CalibrationData.load(url)
        let file = try HDF5File.open(url)
        defer { try? file.close() }
        guard file.exists("outputs") else { throw SensitivityError("\(url.path): no 'outputs' dataset (the FP UNet outputs SQNR compares against)") }
        let raw = try file.readTensor("outputs")
        guard raw.rank >= 2, raw.shape[0] * raw.shape[1] == data.count, raw.count == data.xs.count else {
            throw SensitivityError("\(url.path): 'outputs' has shape \(raw.shape), which does not match 'xs' \(data.xs.shape) row for row")
        }
        let b = data.batch(Array(0..<data.count))
        return CalibrationRows(inputs: b,
                               outputs: raw.reshaped(data.xs.shape))
    }
}
