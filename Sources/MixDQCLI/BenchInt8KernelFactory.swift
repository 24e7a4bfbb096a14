import Foundation
import MixDQCompute
import MixDQQuant

/// Benchmark-only: builds every Conv2d/Linear of a model as an INT8-backend kernel while the model
/// loads, from that one layer's fp32 weight (read from the weight source, quantized, dropped), so the
/// full fp32 model is never resident and the peak RSS is what a quantized deployment would hold.
///
/// Weights: symmetric per output channel at the layer's bit width (per part for split shortcuts), as
/// MixDQ's weight quantizer does. Activations: one plausible per-tensor (Δx, z), from the range
/// [-6, 6] at 8 bits; the integer kernels' speed does not depend on it, only the outputs' meaning.
/// BOS-aware K/V layers get a `Token0Outputs` table primed with the bench context's token-0 row, so
/// every call pays the real table lookup and row copy. Weight-only (A16) layers run the int8
/// backend's float kernel on the dequantized weight, in `floatPrecision` (fp32 or bf16).
final class BenchInt8KernelFactory: LayerKernelFactory {
    /// Weight bits of a layer by path; every path the model builds must have one.
    let weightBits: (String) -> Int?
    /// Token 0 of the bench's text context (`cross_attention_dim` floats).
    let token0Row: [Float]
    let weightOnly: Bool
    let floatPrecision: Precision
    static let activation = UniformQuantizer.parameters(min: -6, max: 6, bits: 8, symmetric: false)

    private(set) var layerCount = 0
    private(set) var weightParameters = 0
    /// Reordered weight codes held by oneDNN, plus per-channel scales, zero-point sums and biases.
    private(set) var residentWeightBytes = 0
    private(set) var layersPerBits: [Int: Int] = [:]
    /// Layers whose integer products run through the 7-bit activation split (no VNNI on this CPU's path).
    private(set) var splitLayers = 0
    /// Layers whose products run on the VPMADDWD kernel (no VNNI, 8-bit codes beyond ±64).
    private(set) var pairProductLayers = 0
    private(set) var linears: [(path: String, kernel: Int8LinearKernel)] = []
    private(set) var convs: [(path: String, kernel: Int8Conv2dKernel)] = []

    init(weightBits: @escaping (String) -> Int?, token0Row: [Float], weightOnly: Bool = false, floatPrecision: Precision = .fp32) {
        self.weightBits = weightBits
        self.token0Row = token0Row
        self.weightOnly = weightOnly
        self.floatPrecision = floatPrecision
    }

    func kernel(for layer: LayerSpec, weights: WeightSource) throws -> InstalledKernel? {
        guard let bits = weightBits(layer.path) else { throw BenchQuantSpecError.noBits(layer: layer.path) }
        let site = QuantSite(path: layer.path, role: layer.role, geometry: layer.geometry)
        let weight = try weights.tensor("\(layer.path).weight", shape: layer.geometry.weightShape)
        let codes = Self.quantize(weight, site: site, bits: bits)
        if weightOnly {
            let kernel = try Int8Backend.floatKernel(site: site, weight: codes.dequantized(shape: layer.geometry.weightShape),
                                                     bias: layer.bias, precision: floatPrecision)
            record(kernel, path: layer.path, bits: bits, parameters: weight.count, hasBias: layer.bias != nil)
            residentWeightBytes += (floatPrecision == .bf16 ? 2 : 4) * weight.count + 4 * (layer.bias?.count ?? 0)
            return kernel
        }
        let activation = site.activationParts.map { _ in Self.activation }
        var kernel = try Int8Backend.kernel(site: site, codes: codes, activation: activation, bias: layer.bias)
        if layer.role == .crossAttentionKeyValue, case .linear(let quantized) = kernel {
            // The FP row for token 0 comes from this layer's fp32 weight while it is at hand; the
            // table keeps no FP kernel (fp: nil), as a deployed model's does not.
            let fp = try DNNLMatmul(weight: weight, bias: layer.bias, precision: .fp32)
            let y = try fp.forward(Tensor(shape: [1, token0Row.count], values: token0Row))
            let table = Token0Outputs(path: layer.path, outFeatures: site.outChannels, fp: nil,
                                      entries: [(input: token0Row, output: Array(UnsafeBufferPointer(start: y.data, count: site.outChannels)))])
            kernel = .linear(BOSAwareLinear(path: layer.path, quantized: quantized, token0: table))
        }
        record(kernel, path: layer.path, bits: bits, parameters: weight.count, hasBias: layer.bias != nil)
        return kernel
    }

    /// `codes = clamp(round_half_even(W / Δ[o]), -2^(b-1), 2^(b-1) - 1)` with `Δ[o] = max|W[o, part]| / (2^(b-1) - 1)`.
    static func quantize(_ w: Tensor, site: QuantSite, bits: Int) -> IntegerWeights {
        let parts = site.weightParts.map { columns in
            (columns, WeightQuantization.parameters(w, columns: columns, rowLength: site.rowLength, bits: bits, symmetric: true).delta)
        }
        return IntegerWeights(quantizing: w, rowLength: site.rowLength, parts: parts, bits: bits)
    }

    private func record(_ kernel: InstalledKernel, path: String, bits: Int, parameters: Int, hasBias: Bool) {
        layerCount += 1
        weightParameters += parameters
        layersPerBits[bits, default: 0] += 1
        var split = false
        switch kernel {
        case .linear(let k):
            if let int8 = (k as? BOSAwareLinear)?.quantized as? Int8LinearKernel ?? k as? Int8LinearKernel {
                linears.append((path, int8))
                residentWeightBytes += int8.matmul.weightBytesAtRest + Self.perChannelBytes(int8.outFeatures, hasBias: hasBias)
                split = int8.matmul.splitsActivations
                if int8.matmul is PairProductInt8Matmul { pairProductLayers += 1 }
            }
        case .conv2d(let k):
            // A split shortcut holds one kernel per input part; the bias lives in the last one only.
            let parts = (k as? Int8SplitConv2dKernel)?.parts.map(\.kernel) ?? [k as? Int8Conv2dKernel].compactMap { $0 }
            for (i, part) in parts.enumerated() {
                convs.append((path, part))
                residentWeightBytes += part.convolution.weightBytesAtRest
                    + Self.perChannelBytes(part.outChannels, hasBias: hasBias && i == parts.count - 1)
                split = split || part.convolution.splitsActivations
                if part.convolution is PairProductInt8Convolution && i == 0 { pairProductLayers += 1 }
            }
        }
        if split { splitLayers += 1 }
    }

    /// Per output channel: Δx·Δw (f32), Σw for the zero-point correction (s32), and the f32 bias.
    private static func perChannelBytes(_ channels: Int, hasBias: Bool) -> Int { channels * (4 + 4 + (hasBias ? 4 : 0)) }
}
