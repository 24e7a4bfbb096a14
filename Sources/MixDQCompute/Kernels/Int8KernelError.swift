import Foundation

/// An INT8 (W8A8) layer built from parameters that cannot run exactly: names the layer and the field.
public struct Int8KernelError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let layer: String
    public let problem: String
    public init(layer: String, _ problem: String) { self.layer = layer; self.problem = problem }
    public var description: String { "int8 layer \(layer): \(problem)" }
    public var errorDescription: String? { description }

    /// Longest reduction (K = in features, or in channels x k x k) whose worst case
    /// 255 * 128 * K and the zero-point term 255 * 128 * K both fit in int32.
    public static let maximumReduction = Int(Int32.max) / (255 * 128)

    /// Checks the parameters every INT8 layer shares; returns the per-channel output scales Δx·Δw[c].
    static func validatedScales(layer: String, outChannels: Int, reduction: Int, codeCount: Int,
                                weightScales: [Float], inputScale: Float, inputZeroPoint: Int, activationBits: Int = 8,
                                bias: Tensor?) throws -> [Float] {
        guard outChannels > 0, reduction > 0 else {
            throw Int8KernelError(layer: layer, "sizes must be positive (out \(outChannels), reduction \(reduction))")
        }
        guard reduction <= maximumReduction else {
            throw Int8KernelError(layer: layer, "reduction length \(reduction) exceeds \(maximumReduction), the most int32 accumulation holds exactly")
        }
        guard codeCount == outChannels * reduction else {
            throw Int8KernelError(layer: layer, "\(codeCount) weight codes, expected \(outChannels) x \(reduction) = \(outChannels * reduction)")
        }
        guard weightScales.count == outChannels else {
            throw Int8KernelError(layer: layer, "\(weightScales.count) weight scales, expected one per output channel (\(outChannels))")
        }
        if let bad = weightScales.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw Int8KernelError(layer: layer, "weight scale of channel \(bad) is \(weightScales[bad]); scales must be finite and positive")
        }
        guard inputScale.isFinite, inputScale > 0 else {
            throw Int8KernelError(layer: layer, "activation scale \(inputScale) must be finite and positive")
        }
        guard (2...8).contains(activationBits) else {
            throw Int8KernelError(layer: layer, "\(activationBits)-bit activations do not fit u8 codes (2...8 bits)")
        }
        let codeMax = (1 << activationBits) - 1
        guard (0...codeMax).contains(inputZeroPoint) else {
            throw Int8KernelError(layer: layer, "activation zero point \(inputZeroPoint) outside the \(activationBits)-bit code range 0...\(codeMax)")
        }
        if let bias, bias.count != outChannels {
            throw Int8KernelError(layer: layer, "bias has \(bias.count) values, expected \(outChannels)")
        }
        let scales = weightScales.map { inputScale * $0 }
        if let bad = scales.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw Int8KernelError(layer: layer, "output scale of channel \(bad) (activation x weight scale) is \(scales[bad]): under- or overflows float32")
        }
        return scales
    }
}
