import Foundation
import MixDQCompute
import MixDQIO

/// Builds the quantized layers of a deployable quantized UNet (`QuantizedUNetFormat`) as the model
/// loads: packed codes unpacked to s8 for the oneDNN INT8 kernels, A16 layers dequantized to fp32 (or
/// bf16: `floatPrecision`),
/// BOS-aware K/V answered from the stored token-0 table. No quantized layer's fp32 weight is read
/// (the file has none). Every entry is checked where it enters, naming the file and the key.
public final class QuantizedUNetKernels: LayerKernelFactory {
    public let source: SafetensorsWeightSource
    public let layers: [String: QuantizedUNetFormat.LayerBits]
    /// What A16 layers run in (the model's FP layers follow the precision the UNet loads in).
    public let floatPrecision: Precision
    private var built = Set<String>()

    /// Throws when the file is not a quantized UNet or its layer list does not parse.
    public init(source: SafetensorsWeightSource, floatPrecision: Precision = .fp32) throws {
        self.source = source
        self.floatPrecision = floatPrecision
        let meta = source.metadata
        guard meta["format"] == QuantizedUNetFormat.format else {
            throw QuantizedUNetFormat.Invalid("\(source.name): not a mixdq quantized UNet (metadata format '\(meta["format"] ?? "missing")', expected '\(QuantizedUNetFormat.format)')")
        }
        guard let json = meta["layers"], let parsed = try? JSONDecoder().decode([String: QuantizedUNetFormat.LayerBits].self, from: Data(json.utf8)) else {
            throw QuantizedUNetFormat.Invalid("\(source.name): metadata 'layers' is missing or not a JSON object of {weight_bits, rest_bits, activation_bits}")
        }
        for (path, b) in parsed {
            guard (2...8).contains(b.weightBits), QuantizedUNetFormat.restBits(forWeightBits: b.weightBits) == b.restBits else {
                throw QuantizedUNetFormat.Invalid("\(source.name): layer '\(path)': \(b.weightBits)-bit weights stored at \(b.restBits) bits have no integer path (weights 2...8 bits, packed at 2, 4 or 8)")
            }
            guard (2...8).contains(b.activationBits) || b.activationBits == 0 else {
                throw QuantizedUNetFormat.Invalid("\(source.name): layer '\(path)': \(b.activationBits)-bit activations have no integer path (2...8, or 0 for weight-only)")
            }
        }
        layers = parsed
    }

    /// True when `folder` holds a quantized UNet (read from the safetensors header only).
    public static func isQuantizedUNet(_ source: SafetensorsWeightSource) -> Bool {
        source.metadata["format"] == QuantizedUNetFormat.format
    }

    public func kernel(for spec: LayerSpec, weights: WeightSource) throws -> InstalledKernel? {
        guard let bits = layers[spec.path] else { return nil }
        let site = QuantSite(path: spec.path, role: spec.role, geometry: spec.geometry)
        let out = site.outChannels, parts = site.weightParts.count
        let codesKey = "\(spec.path).weight_codes"
        let packed = try PackedWeightCodes(bytes: source.bytes(codesKey, dtype: .u8), bits: bits.restBits,
                                           count: out * site.rowLength, name: "\(source.name): '\(codesKey)'")
        let scales = try source.tensor("\(spec.path).weight_scales", shape: [parts, out]).scalars
        let codes = packed.unpacked()
        let limit = 1 << (bits.weightBits - 1)
        if let bad = codes.firstIndex(where: { Int($0) < -limit || Int($0) >= limit }) {
            throw QuantizedUNetFormat.Invalid("\(source.name): '\(codesKey)' code \(codes[bad]) at \(bad) is outside \(bits.weightBits)-bit range \(-limit)...\(limit - 1)")
        }
        let weights = IntegerWeights(bits: bits.weightBits, codes: codes,
                                     parts: (0..<parts).map { (site.weightParts[$0], Array(scales[($0 * out)..<(($0 + 1) * out)])) })
        var kernel: InstalledKernel
        if bits.activationBits == 0 {
            // A16: the dequantized weight (codes·Δw, what fake quant runs).
            kernel = try Int8Backend.floatKernel(site: site, weight: weights.dequantized(shape: spec.geometry.weightShape), bias: spec.bias,
                                                 precision: floatPrecision)
        } else {
            let deltas = try source.tensor("\(spec.path).input_scales", shape: [site.activationParts.count]).scalars
            let zeros = try source.tensor("\(spec.path).input_zero_points", shape: [site.activationParts.count]).scalars
            let codeMax = Float((1 << bits.activationBits) - 1)
            for (i, z) in zeros.enumerated() where !(z >= 0 && z <= codeMax && z == z.rounded()) {
                throw QuantizedUNetFormat.Invalid("\(source.name): '\(spec.path).input_zero_points' holds \(z) at \(i) (an integer in 0...\(Int(codeMax)) for \(bits.activationBits)-bit activations)")
            }
            kernel = try Int8Backend.kernel(site: site, codes: weights, activation: zip(deltas, zeros).map { ($0, $1) },
                                            activationBits: bits.activationBits, bias: spec.bias)
        }
        if spec.role == .crossAttentionKeyValue, source.contains("\(spec.path).token0_inputs"), case .linear(let k) = kernel {
            let inKey = "\(spec.path).token0_inputs", outKey = "\(spec.path).token0_outputs"
            let entries = try source.info(inKey).shape.first ?? 0
            let inputs = try source.tensor(inKey, shape: [entries, site.geometry.inChannels]).scalars
            let outputs = try source.tensor(outKey, shape: [entries, out]).scalars
            let table = Token0Outputs(path: spec.path, outFeatures: out, fp: nil, entries: (0..<entries).map {
                (Array(inputs[($0 * site.geometry.inChannels)..<(($0 + 1) * site.geometry.inChannels)]), Array(outputs[($0 * out)..<(($0 + 1) * out)]))
            })
            kernel = .linear(BOSAwareLinear(path: spec.path, quantized: k, token0: table))
        }
        built.insert(spec.path)
        return kernel
    }

    /// Throws when the file lists layers the model does not have.
    public func finish() throws {
        let unknown = Set(layers.keys).subtracting(built).sorted()
        if !unknown.isEmpty {
            throw QuantizedUNetFormat.Invalid("\(source.name): \(unknown.count) quantized layer(s) this UNet does not have: \(unknown.prefix(5).joined(separator: ", "))")
        }
    }
}
