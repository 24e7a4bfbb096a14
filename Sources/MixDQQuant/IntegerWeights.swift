import Foundation
import MixDQCompute

/// A layer's weight as integer codes, what integer backends (oneDNN INT8, packed low-bit, CUDA)
/// execute: `codes[o, j] = clamp(round_half_even(W[o, j] / Δ[part][o]), -2^(b-1), 2^(b-1) - 1)`, so
/// `codes · Δ` is the fake-quantized weight bit for bit (mixdq-method.md §3.3, symmetric weights).
public struct IntegerWeights: Sendable {
    public let bits: Int
    /// `[out, rowLength]` row-major (rowLength = in·k·k for convolutions, OIHW order).
    public let codes: [Int8]
    /// Per part (one, two for split shortcuts): column range of a row and per-output-channel Δ.
    public let parts: [(columns: Range<Int>, scales: [Float])]

    public init(bits: Int, codes: [Int8], parts: [(columns: Range<Int>, scales: [Float])]) {
        self.bits = bits; self.codes = codes; self.parts = parts
    }

    /// Quantizes `weight` (`[out, rowLength]` flattened, PyTorch layout) with per-part, per-output-channel
    /// Δ: `clamp(round_half_even(W / Δ), -2^(b-1), 2^(b-1) - 1)`, fake quant's rounding exactly.
    public init(quantizing weight: Tensor, rowLength: Int, parts: [(columns: Range<Int>, scales: [Float])], bits: Int) {
        let (qmin, qmax) = UniformQuantizer.range(bits: bits, symmetric: true)
        var codes = [Int8](repeating: 0, count: weight.count)
        for (cols, delta) in parts {
            for (r, d) in delta.enumerated() {
                for c in cols {
                    let i = r * rowLength + c
                    codes[i] = Int8(min(max((weight.data[i] / d).rounded(.toNearestOrEven), qmin), qmax))
                }
            }
        }
        self.init(bits: bits, codes: codes, parts: parts)
    }

    /// `codes · Δ` in `shape` (PyTorch layout): the fake-quantized weight, bit for bit.
    public func dequantized(shape: [Int]) -> Tensor {
        let w = Tensor(uninitializedShape: shape)
        let rowLength = codes.count / max(parts.first?.scales.count ?? 1, 1)
        for (cols, delta) in parts {
            for (r, d) in delta.enumerated() {
                for j in cols { w.data[r * rowLength + j] = Float(codes[r * rowLength + j]) * d }
            }
        }
        return w
    }
}

public struct IntegerWeightsError: Error, CustomStringConvertible, LocalizedError {
    public let path: String, reason: String
    public var description: String { "\(path): no integer weights: \(reason)" }
    public var errorDescription: String? { description }
}

extension QuantizedLayer {
    /// The integer weight codes at `bits` from the calibrated parameters.
    public func integerWeights(bits: Int) throws -> IntegerWeights {
        guard settings.weightSymmetric else {
            throw IntegerWeightsError(path: path, reason: "weights are asymmetric (sym: False); integer kernels take symmetric weights")
        }
        guard let k = settings.bitWidths.firstIndex(of: bits) else {
            throw IntegerWeightsError(path: path, reason: "\(bits)-bit parameters were not calibrated (bit widths \(settings.bitWidths))")
        }
        guard (2...8).contains(bits) else { throw IntegerWeightsError(path: path, reason: "\(bits) bits do not fit int8 codes") }
        guard !weightParameters.isEmpty else { throw IntegerWeightsError(path: path, reason: "weights are not calibrated") }
        guard let w = layer.masterWeight else { throw IntegerWeightsError(path: path, reason: "the FP weight was released") }
        return IntegerWeights(quantizing: w, rowLength: rowLength,
                              parts: weightParts.enumerated().map { ($0.element, weightParameters[$0.offset][k].delta) }, bits: bits)
    }
}
