import Foundation
import MixDQCompute
import MixDQIO

/// Writes a deployable quantized UNet (`QuantizedUNetFormat`) from a quantizer whose bits and
/// switches are set (checkpoint loaded, MP files applied) and whose layers still hold fp32 weights.
public enum QuantizedUNetWriter {
    /// `source`: the fp32 UNet's weights (every non-layer tensor is copied from it, read through
    /// `tensors` when given: the same keys with a LoRA fused);
    /// `token0Rows`: token-0 context rows the BOS-aware K/V tables are computed for (the pipeline's
    /// BOS row; the all-zero row of an empty negative prompt is always added).
    /// Writes `<folder>/config.json` and the weights atomically; returns the bytes of weight codes written.
    @discardableResult
    public static func write(_ sim: QuantSimulator, source: SafetensorsWeightSource, tensors: WeightSource? = nil, config: URL,
                             token0Rows: [[Float]], metadata extra: [String: String] = [:], to folder: URL) throws -> Int {
        if let missing = sim.unsupported(on: Int8Backend()).first {
            throw QuantizedUNetFormat.Invalid("layer '\(missing.path)' has no integer path: \(missing.reason)")
        }
        var items: [SafetensorsItem] = []
        var layerBits: [String: QuantizedUNetFormat.LayerBits] = [:]
        var replaced = Set<String>()
        var codeBytes = 0
        for l in sim.layers where l.weightEnabled {
            let path = l.path
            guard let rest = QuantizedUNetFormat.restBits(forWeightBits: l.weightBits) else {
                throw QuantizedUNetFormat.Invalid("layer '\(path)': \(l.weightBits)-bit weights have no packed format")
            }
            let codes = try l.integerWeights(bits: l.weightBits)
            let packed = try PackedWeightCodes(codes: codes.codes, bits: rest, name: "\(path).weight_codes")
            codeBytes += packed.bytes.count
            items.append(SafetensorsItem(name: "\(path).weight_codes", bytes: packed.bytes))
            items.append(SafetensorsItem(name: "\(path).weight_scales",
                                         tensor: Tensor(shape: [codes.parts.count, l.site.outChannels], values: codes.parts.flatMap(\.scales))))
            if l.activationEnabled {
                let p = l.observers.map { $0.parameters(bits: l.activationBits) }
                items.append(SafetensorsItem(name: "\(path).input_scales", tensor: Tensor(shape: [p.count], values: p.map(\.delta))))
                items.append(SafetensorsItem(name: "\(path).input_zero_points", tensor: Tensor(shape: [p.count], values: p.map(\.zeroPoint))))
            }
            if l.bosAware, let w = l.layer.masterWeight {
                let table = Token0Outputs(path: path, outFeatures: l.site.outChannels,
                                          fp: try DNNLMatmul(weight: w, bias: l.layer.bias, precision: .fp32))
                let width = l.site.geometry.inChannels
                for row in token0Rows + [[Float](repeating: 0, count: width)] {
                    guard row.count == width else {
                        throw QuantizedUNetFormat.Invalid("layer '\(path)': a token-0 row of \(row.count) values for a \(width)-wide context")
                    }
                    try table.prime(row)
                }
                items.append(SafetensorsItem(name: "\(path).token0_inputs",
                                             tensor: Tensor(shape: [table.entries.count, width], values: table.entries.flatMap(\.input))))
                items.append(SafetensorsItem(name: "\(path).token0_outputs",
                                             tensor: Tensor(shape: [table.entries.count, l.site.outChannels], values: table.entries.flatMap(\.output))))
            }
            layerBits[path] = .init(weightBits: l.weightBits, restBits: rest, activationBits: l.activationEnabled ? l.activationBits : 0)
            replaced.insert("\(path).weight")
        }
        for key in source.keys where !replaced.contains(key) {
            items.append(SafetensorsItem(name: key, tensor: try (tensors ?? source).tensor(key, shape: try source.info(key).shape)))
        }
        var meta = extra
        meta["format"] = QuantizedUNetFormat.format
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        meta["layers"] = String(decoding: try encoder.encode(layerBits), as: UTF8.self)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try AtomicFile.write(try Data(contentsOf: config), to: folder.appendingPathComponent("config.json"))
        try SafetensorsWriter.write(items: items, metadata: meta, to: folder.appendingPathComponent(QuantizedUNetFormat.weightsFile))
        return codeBytes
    }
}
