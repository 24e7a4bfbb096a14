import Foundation
import MixDQCompute

/// Real integer execution on oneDNN: W(2..8)A(2..8) layers run u8 activation codes (per-tensor Δx and
/// zero point, per part for split shortcuts) against s8 weight codes (per-output-channel Δw) with
/// exact s32 accumulation and a float epilogue; weight-only quantized layers (A16) run on the
/// dequantized weight (codes·Δw, the fake-quantized weight bit for bit) and FP layers stay FP, both in
/// `floatPrecision`: fp32 (fake quant's numerics), or bf16 on oneDNN where the CPU has it, the CPU's
/// counterpart of the original's FP16 for A16 and FP layers (opt-in: bf16 rounds activations to 8
/// mantissa bits, coarser than FP16's 11).
///
/// Built for the layer's configuration at the time of the call (bits fixed): `QuantSimulator.deploy`.
public struct Int8Backend: QuantBackend {
    public let floatPrecision: Precision
    public init(floatPrecision: Precision = .fp32) { self.floatPrecision = floatPrecision }
    public var name: String { "int8" }
    /// What the logs add to "int8" for a float precision other than fp32.
    public static func floatLayersNote(_ precision: Precision) -> String {
        precision == .fp32 ? "" : "; A16 and FP layers in \(precision.rawValue)"
    }

    public func unsupportedReason(_ layer: QuantizedLayer) -> String? {
        switch (layer.weightEnabled, layer.activationEnabled) {
        case (false, false): return nil
        case (false, true): return "activations quantized with FP weights (W16A\(layer.activationBits)) has no integer path"
        case (true, let act):
            if !layer.settings.weightSymmetric { return "weights are asymmetric (sym: False); integer kernels take symmetric weights" }
            if !(2...8).contains(layer.weightBits) { return "\(layer.weightBits)-bit weights do not fit int8 codes" }
            if act && !(2...8).contains(layer.activationBits) {
                return "\(layer.activationBits)-bit activations do not fit u8 codes"
            }
            return nil
        }
    }

    public func makeKernel(for layer: QuantizedLayer) throws -> InstalledKernel {
        if let reason = unsupportedReason(layer) { throw QuantBackendError(backend: name, path: layer.path, reason: reason) }
        let bias = layer.layer.bias
        guard layer.weightEnabled else {
            // FP (act-protected) layers: the packed oneDNN kernel fp-infer runs, same numerics.
            guard let w = layer.layer.masterWeight else { return layer.layer.fpKernel }
            return try Self.floatKernel(site: layer.site, weight: w, bias: bias, precision: floatPrecision)
        }
        guard layer.activationEnabled else {
            // A16: the dequantized weight (codes·Δw, the fake-quantized weight bit for bit).
            return try Self.floatKernel(site: layer.site, weight: layer.quantizedWeight(bits: layer.weightBits), bias: bias,
                                        precision: floatPrecision)
        }
        let codes = try layer.integerWeights(bits: layer.weightBits)
        let activation = layer.observers.map { $0.parameters(bits: layer.activationBits) }
        return try Self.kernel(site: layer.site, codes: codes, activation: activation, activationBits: layer.activationBits, bias: bias)
    }

    /// A packed oneDNN fp32 or bf16 kernel over `weight` (PyTorch layout); bf16 holds the weight in bf16.
    /// Convolutions stay direct: a quantized UNet is deployed to be small, and Winograd would hold 4x
    /// the weight bytes plus the fp32 weights (see `ConvolutionAlgorithm`).
    public static func floatKernel(site: QuantSite, weight w: Tensor, bias: Tensor?, precision: Precision) throws -> InstalledKernel {
        switch site.geometry {
        case .linear: return .linear(try DNNLMatmul(weight: w, bias: bias, precision: precision))
        case .conv2d(_, _, _, let s, let p):
            return .conv2d(try DNNLConvolution(weight: w, bias: bias, stride: s, padding: p, precision: precision, algorithm: .direct))
        }
    }

    /// The integer kernel for a site from its integer weights and per-part activation (Δx, z): shared
    /// by the in-memory backend and the deployable-checkpoint loader.
    public static func kernel(site: QuantSite, codes: IntegerWeights, activation: [(delta: Float, zeroPoint: Float)],
                              activationBits: Int = 8, bias: Tensor?) throws -> InstalledKernel {
        guard codes.parts.count == site.weightParts.count, activation.count == site.activationParts.count,
              codes.codes.count == site.outChannels * site.rowLength else {
            throw QuantBackendError(backend: "int8", path: site.path,
                                    reason: "\(codes.parts.count) weight part(s) with \(codes.codes.count) codes and \(activation.count) activation part(s) do not fit \(site.geometry)")
        }
        // Codes rest packed at the narrowest of 2, 4, 8 bits that holds them (4-bit weights: half a byte each).
        guard let rest = QuantizedUNetFormat.restBits(forWeightBits: codes.bits) else {
            throw QuantBackendError(backend: "int8", path: site.path, reason: "\(codes.bits)-bit weights do not fit int8 codes")
        }
        switch site.geometry {
        case .linear(let inF, let outF):
            return .linear(try Int8LinearKernel(name: site.path, weightCodes: codes.codes, outFeatures: outF, inFeatures: inF,
                                                weightScales: codes.parts[0].scales, inputScale: activation[0].delta,
                                                inputZeroPoint: Int(activation[0].zeroPoint), activationBits: activationBits,
                                                bias: bias, restBits: rest))
        case .conv2d(_, let outC, let k, let s, let p):
            var halves: [Int8Conv2dKernel] = []
            for (part, channels) in site.activationParts.enumerated() {
                let cols = site.weightParts[part]
                var partCodes = [Int8](repeating: 0, count: outC * cols.count)
                codes.codes.withUnsafeBufferPointer { all in
                    partCodes.withUnsafeMutableBufferPointer { dst in
                        for o in 0..<outC {
                            UnsafeMutableRawPointer(dst.baseAddress! + o * cols.count)
                                .copyMemory(from: all.baseAddress! + o * site.rowLength + cols.lowerBound, byteCount: cols.count)
                        }
                    }
                }
                // Bias once, in the last part's epilogue.
                halves.append(try Int8Conv2dKernel(name: site.isSplit ? "\(site.path) (input channels \(channels))" : site.path,
                                                   weightCodes: partCodes, outChannels: outC, inChannels: channels.count,
                                                   kernelSize: k, stride: s, padding: p, weightScales: codes.parts[part].scales,
                                                   inputScale: activation[part].delta, inputZeroPoint: Int(activation[part].zeroPoint),
                                                   activationBits: activationBits, bias: part == site.activationParts.count - 1 ? bias : nil, restBits: rest))
            }
            if halves.count == 1 { return .conv2d(halves[0]) }
            return .conv2d(Int8SplitConv2dKernel(parts: zip(site.activationParts, halves).map { ($0, $1) }))
        }
    }
}

/// A split shortcut on the integer path: each input part (its own Δx and z) runs its own exact
/// integer convolution over its weight columns; the dequantized parts add up, bias once.
public final class Int8SplitConv2dKernel: Conv2dKernel {
    public let parts: [(channels: Range<Int>, kernel: Int8Conv2dKernel)]
    init(parts: [(Range<Int>, Int8Conv2dKernel)]) { self.parts = parts.map { (channels: $0.0, kernel: $0.1) } }

    public func forward(_ x: FeatureMap) throws -> FeatureMap {
        var sum: FeatureMap?
        for part in parts {
            let y = try part.kernel.forward(Ops.sliceChannels(x, part.channels))
            if let s = sum { Ops.addInPlace(s.tensor, y.tensor) } else { sum = y }
        }
        guard let sum else { throw Int8KernelError(layer: "split shortcut", "no parts") }
        return sum
    }
}
