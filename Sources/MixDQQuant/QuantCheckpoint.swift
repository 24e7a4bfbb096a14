import Foundation
import MixDQCompute
import MixDQIO

/// The quant checkpoint `ptq` writes: every quantizer's scales and zero points for all bit widths,
/// in one safetensors file keyed by layer path (the original's `ckpt.pth` content, typed).
///
/// Keys (B = number of bit widths, listed in metadata `bit_widths`, ascending):
///   `<path>.weight_quantizer.delta_list`       [B, C_out]   per output channel
///   `<path>.weight_quantizer.zero_point_list`  [B, C_out]   0 for symmetric weights
///   `<path>.act_quantizer.delta_list`          [B]          per tensor
///   `<path>.act_quantizer.zero_point_list`     [B]          in [0, 2^b - 1]
/// Split shortcuts add `<path>.weight_quantizer_0.*` and `<path>.act_quantizer_0.*` for the skip
/// part (input channels from the split point on), as the original names them.
/// Metadata: `format` = `mixdq-quant/1`, `bit_widths`, `weight_symmetric`, `ema_compat_repeat`,
/// `bos_aware`, plus whatever the caller adds (config hash, calibration file).
public enum QuantCheckpoint {
    public static let format = "mixdq-quant/1"

    public struct Invalid: Error, CustomStringConvertible, LocalizedError {
        public let description: String
        public var errorDescription: String? { description }
    }

    static func suffix(_ part: Int) -> String { part == 0 ? "" : "_\(part - 1)" }

    /// Throws (naming the layer) when an activation quantizer never saw a finite input range.
    public static func save(_ sim: QuantSimulator, to url: URL, metadata extra: [String: String] = [:]) throws {
        let nb = sim.settings.bitWidths.count
        for l in sim.layers {
            for (part, obs) in l.observers.enumerated() where !obs.isCalibrated {
                throw Invalid(description: "\(url.path): not written: layer '\(l.path)' (act_quantizer\(suffix(part))) saw no finite "
                              + "input during calibration (NaN or Inf activations: check the model's weights)")
            }
        }
        var tensors: [(String, Tensor)] = []
        for l in sim.layers {
            precondition(!l.weightParameters.isEmpty, "\(l.path): weights not calibrated")
            for (part, params) in l.weightParameters.enumerated() {
                let cout = params[0].delta.count
                tensors.append(("\(l.path).weight_quantizer\(suffix(part)).delta_list",
                                Tensor(shape: [nb, cout], values: params.flatMap(\.delta))))
                tensors.append(("\(l.path).weight_quantizer\(suffix(part)).zero_point_list",
                                Tensor(shape: [nb, cout], values: params.flatMap(\.zeroPoint))))
            }
            for (part, obs) in l.observers.enumerated() {
                tensors.append(("\(l.path).act_quantizer\(suffix(part)).delta_list", Tensor(shape: [nb], values: obs.delta)))
                tensors.append(("\(l.path).act_quantizer\(suffix(part)).zero_point_list", Tensor(shape: [nb], values: obs.zeroPoint)))
            }
        }
        var meta = extra
        meta["format"] = format
        meta["bit_widths"] = sim.settings.bitWidths.map(String.init).joined(separator: ",")
        meta["weight_symmetric"] = String(sim.settings.weightSymmetric)
        meta["ema_compat_repeat"] = String(sim.settings.emaCompatRepeat)
        meta["bos_aware"] = String(sim.settings.bosAware)
        try SafetensorsWriter.write(tensors, metadata: meta, to: url)
    }

    /// Loads parameters into a simulator built with the same settings and model.
    public static func load(_ url: URL, into sim: QuantSimulator) throws {
        let file = try SafetensorsFile(url)
        guard file.metadata["format"] == format else {
            throw Invalid(description: "\(url.path): not a mixdq quant checkpoint (metadata format is '\(file.metadata["format"] ?? "missing")', expected '\(format)')")
        }
        let bits = (file.metadata["bit_widths"] ?? "").split(separator: ",").compactMap { Int($0) }
        guard bits == sim.settings.bitWidths else {
            throw Invalid(description: "\(url.path): checkpoint bit widths \(bits) differ from the config's \(sim.settings.bitWidths)")
        }
        if let sym = file.metadata["weight_symmetric"], sym != String(sim.settings.weightSymmetric) {
            throw Invalid(description: "\(url.path): checkpoint weight_symmetric=\(sym) differs from the config (sym: \(sim.settings.weightSymmetric))")
        }
        var used = Set<String>()
        func read(_ key: String, _ shape: [Int]) throws -> [Float] {
            guard file.contains(key) else { throw Invalid(description: "\(url.path): missing '\(key)'") }
            let t = try file.floatTensor(key)
            guard t.shape == shape else { throw Invalid(description: "\(url.path): '\(key)' has shape \(t.shape), expected \(shape)") }
            used.insert(key)
            return t.scalars
        }
        let nb = bits.count
        /// Row k of `values` (`perRow` values each) holds parameters for `bits[k]`: Δ must be positive
        /// with a finite top level, zero points integers inside the quantizer's integer range.
        func checkDeltas(_ key: String, _ values: [Float], perRow: Int, symmetric: Bool) throws {
            for (i, d) in values.enumerated() {
                let (qmin, qmax) = UniformQuantizer.range(bits: bits[i / perRow], symmetric: symmetric)
                if !(d > 0) || !d.isFinite || !((qmax - qmin) * d).isFinite {
                    throw Invalid(description: "\(url.path): '\(key)' holds the scale \(d) at flat index \(i) "
                                  + "(a quantizer scale must be positive and finite)")
                }
            }
        }
        func checkZeroPoints(_ key: String, _ values: [Float], perRow: Int, symmetric: Bool) throws {
            for (i, z) in values.enumerated() {
                let b = bits[i / perRow]
                let (qmin, qmax) = UniformQuantizer.range(bits: b, symmetric: symmetric)
                if !z.isFinite || z != z.rounded() || z < qmin || z > qmax {
                    throw Invalid(description: "\(url.path): '\(key)' holds the zero point \(z) at flat index \(i) "
                                  + "(must be an integer in \(Int(qmin))...\(Int(qmax)) for \(b) bits)")
                }
            }
        }
        let sym = sim.settings.weightSymmetric
        for l in sim.layers {
            let cout = l.site.outChannels
            var parts: [[ChannelParameters]] = []
            for part in 0..<l.weightParts.count {
                let dKey = "\(l.path).weight_quantizer\(suffix(part)).delta_list"
                let zKey = "\(l.path).weight_quantizer\(suffix(part)).zero_point_list"
                let d = try read(dKey, [nb, cout])
                let z = try read(zKey, [nb, cout])
                try checkDeltas(dKey, d, perRow: cout, symmetric: sym)
                try checkZeroPoints(zKey, z, perRow: cout, symmetric: sym)
                parts.append((0..<nb).map { ChannelParameters(delta: Array(d[($0 * cout)..<(($0 + 1) * cout)]),
                                                              zeroPoint: Array(z[($0 * cout)..<(($0 + 1) * cout)])) })
            }
            l.loadWeightParameters(parts)
            for (part, obs) in l.observers.enumerated() {
                // ptq calibrates every activation quantizer, so each must be present: one left
                // uncalibrated would stop inference deep inside a forward.
                let key = "\(l.path).act_quantizer\(suffix(part))"
                let d = try read("\(key).delta_list", [nb]), z = try read("\(key).zero_point_list", [nb])
                try checkDeltas("\(key).delta_list", d, perRow: 1, symmetric: false)
                try checkZeroPoints("\(key).zero_point_list", z, perRow: 1, symmetric: false)
                obs.load(delta: d, zeroPoint: z)
            }
        }
        let unknown = Set(file.keys).subtracting(used).sorted()
        if !unknown.isEmpty {
            throw Invalid(description: "\(url.path): \(unknown.count) entries for layers this model does not have: \(unknown.prefix(5).joined(separator: ", "))")
        }
    }
}
