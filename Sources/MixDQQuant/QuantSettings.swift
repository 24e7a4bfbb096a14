import Foundation
import MixDQIO

/// The quantizer settings of a MixDQ config (`quant.*` and `mixed_precision`), validated.
public struct QuantSettings: Equatable, Sendable {
    /// Candidate bit widths whose parameters are all calibrated at once (MixDQ: [2, 4, 8]).
    public var bitWidths: [Int]
    public var weightBits: Int
    public var weightSymmetric: Bool
    public var activationBits: Int
    public var runningStat: Bool
    public var bosAware: Bool
    /// The original repeats the EMA update once per bit width within a batch (mixdq-method.md §3.5).
    public var emaCompatRepeat: Bool
    public static let emaMomentum: Float = 0.95
    /// The momentum as the original's Python float (the EMA's (1 - m) is formed in double).
    public static let emaMomentumValue: Double = 0.95

    public init(bitWidths: [Int] = [2, 4, 8], weightBits: Int = 8, weightSymmetric: Bool = true, activationBits: Int = 8,
                runningStat: Bool = true, bosAware: Bool = true, emaCompatRepeat: Bool = false) {
        self.bitWidths = bitWidths; self.weightBits = weightBits; self.weightSymmetric = weightSymmetric
        self.activationBits = activationBits; self.runningStat = runningStat; self.bosAware = bosAware
        self.emaCompatRepeat = emaCompatRepeat
    }

    public struct Invalid: Error, CustomStringConvertible, LocalizedError {
        public let description: String
        public init(description: String) { self.description = description }
        public var errorDescription: String? { description }
    }

    public init(_ config: MixDQConfig) throws {
        let w = config.quant.weight.quantizer, a = config.quant.activation.quantizer
        var bits = config.mixedPrecision ?? [w.nBits]
        for b in [w.nBits, a.nBits] where !bits.contains(b) { bits.append(b) }
        bits.sort()
        guard bits.allSatisfy({ (2...8).contains($0) }) else {
            throw Invalid(description: "mixed_precision: bit widths must be between 2 and 8, got \(bits)")
        }
        guard w.channelWise else { throw Invalid(description: "quant.weight.quantizer.channel_wise: only per-channel weights are supported") }
        guard !a.channelWise else { throw Invalid(description: "quant.activation.quantizer.channel_wise: only per-tensor activations are supported") }
        for (key, m) in [("quant.weight.quantizer.scale_method", w.scaleMethod), ("quant.activation.quantizer.scale_method", a.scaleMethod)]
        where m != "min_max" {
            throw Invalid(description: "\(key): only 'min_max' is supported (MixDQ uses it), got '\(m)'")
        }
        self.init(bitWidths: bits, weightBits: w.nBits, weightSymmetric: w.sym, activationBits: a.nBits,
                  runningStat: a.runningStat, bosAware: a.bosAware, emaCompatRepeat: a.emaCompatRepeat)
    }
}
