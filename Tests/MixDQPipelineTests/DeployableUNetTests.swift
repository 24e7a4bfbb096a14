import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline
import MixDQQuant

/// `mixdq quantize`'s deployable quantized UNet on the embedded default model: it round-trips (the
/// loaded file computes what the in-memory INT8 UNet it was written from computes, bit for bit), it
/// holds no fp32 weight of a quantized layer, and damaged or unsupported files are named.
extension QuantizedInferenceTests {
    typealias Format = QuantizedUNetFormat

    /// Writes the deployable UNet for `setup` (uniform W8A8 unless bits are given) into a fresh folder.
    func writeDeployable(_ s: Setup, weightBits: BitConfig? = nil, activations: Bool = true, label: String) throws
        -> (folder: URL, sim: QuantSimulator, unet: UNet2DConditionModel) {
        let model = ModelFolder(try Env.model())
        let unet = try model.loadUNet()
        let sim = try quantSetup(s, weightBits: weightBits, activations: activations).apply(to: unet, log: nil)
        let pipeline = try TextToImagePipeline(folder: model)
        let context = try pipeline.encode([""]).context
        let bos = Array(UnsafeBufferPointer(start: context.data, count: context.shape[2]))
        let unetDir = try model.component("unet")
        let out = try Env.tempDir("deployable-\(label)").appendingPathComponent("unet")
        try QuantizedUNetWriter.write(sim, source: try SafetensorsWeightSource.open(folder: unetDir),
                                      config: unetDir.appendingPathComponent("config.json"), token0Rows: [bos], to: out)
        return (out, sim, unet)
    }

    func testDeployableUNetRoundTripsBitForBit() throws {
        let s = try setup()
        // Mixed precision: 8-, 4- and 2-bit weights (packed at 8, 4, 2 bits), every layer W·A8.
        let paths = try ModelFolder(try Env.model()).loadUNet().registry.paths
        let bits = BitConfig(bits: Dictionary(uniqueKeysWithValues: paths.enumerated().map { ($0.element, [8, 4, 2][$0.offset % 3]) }),
                             source: "test bits")
        for (label, wbits, acts) in [("w8a8", nil as BitConfig?, true), ("mixed", bits, true), ("w8a16", nil, false)] {
            let (folder, sim, unet) = try writeDeployable(s, weightBits: wbits, activations: acts, label: label)
            try sim.deploy(Int8Backend())
            let x = try inputs(s)   // contexts from the pipeline: token 0 is the BOS row the table holds
            let want = try unet(x)
            let loaded = try ModelFolder(try Env.model(), unet: folder).loadUNet()
            XCTAssertTrue(loaded.registry.layers.allSatisfy { $0.masterWeight == nil && $0.isQuantized },
                          "\(label): a quantized layer holds an fp32 weight")
            XCTAssertEqual(Env.values(try loaded(x)), Env.values(want), "\(label): the loaded UNet differs from the one written")

            // The file has no fp32 weight of a quantized layer: codes only, packed at the documented width.
            let file = try SafetensorsFile(folder.appendingPathComponent(Format.weightsFile))
            var codeBytes = 0, fp32Bytes = 0
            for l in sim.layers {
                XCTAssertFalse(file.contains("\(l.path).weight"), "\(label): \(l.path).weight (fp32) in the deployable file")
                let info = try file.info("\(l.path).weight_codes")
                XCTAssertEqual(info.dtype, .u8)
                let n = l.site.outChannels * l.site.rowLength
                let rest = Format.restBits(forWeightBits: l.weightBits)!
                XCTAssertEqual(info.shape, [(n * rest + 7) / 8], "\(label): \(l.path) packed at \(rest) bits")
                codeBytes += info.shape[0]; fp32Bytes += 4 * n
            }
            print(String(format: "deployable %@: weight codes %d bytes = %.3fx of fp32", label, codeBytes, Double(codeBytes) / Double(fp32Bytes)))
        }
    }

    func testDeployableUNetNeedsTheBOSRowItWasQuantizedFor() throws {
        let s = try setup()
        let (folder, _, _) = try writeDeployable(s, label: "bos")
        let loaded = try ModelFolder(try Env.model(), unet: folder).loadUNet()
        var x = try inputs(s)
        let ctx = Tensor(shape: x.encoderHiddenStates.shape, values: x.encoderHiddenStates.scalars.map { $0 + 0.5 })
        x = UNetInputs(sample: x.sample, timesteps: x.timesteps, encoderHiddenStates: ctx, textEmbeds: x.textEmbeds, timeIds: x.timeIds)
        XCTAssertThrowsError(try loaded(x)) { error in
            XCTAssertTrue("\(error)".contains("attn2.to_k") && "\(error)".contains("token 0"), "\(error)")
        }
        // The all-zero row (SDXL's empty negative prompt) is always in the table.
        let zeros = UNetInputs(sample: x.sample, timesteps: x.timesteps, encoderHiddenStates: Tensor(zeros: ctx.shape),
                               textEmbeds: x.textEmbeds, timeIds: x.timeIds)
        XCTAssertNoThrow(try loaded(zeros))
    }

    /// Rewrites the deployable file with `edit` applied to its entries and metadata.
    func rewrite(_ folder: URL, _ edit: (inout [String: SafetensorsItem], inout [String: String]) throws -> Void) throws {
        let url = folder.appendingPathComponent(Format.weightsFile)
        let file = try SafetensorsFile(url)
        var items: [String: SafetensorsItem] = [:]
        for key in file.keys {
            let info = try file.info(key)
            items[key] = info.dtype == .f32 ? SafetensorsItem(name: key, tensor: try file.floatTensor(key, copy: true))
                : SafetensorsItem(name: key, bytes: [UInt8](try file.rawBytes(key)), dtype: info.dtype, shape: info.shape)
        }
        var meta = file.metadata
        try edit(&items, &meta)
        try SafetensorsWriter.write(items: Array(items.values), metadata: meta, to: url)
    }

    func assertLoadFails(_ folder: URL, mentions needles: [String], line: UInt = #line) {
        XCTAssertThrowsError(try ModelFolder(try Env.model(), unet: folder).loadUNet(), line: line) { error in
            let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            for n in needles { XCTAssertTrue(message.contains(n), "'\(n)' not in: \(message)", line: line) }
        }
    }

    func testBadDeployableFilesAreNamed() throws {
        let s = try setup()
        let (folder, _, _) = try writeDeployable(s, label: "bad")
        let pristine = try Data(contentsOf: folder.appendingPathComponent(Format.weightsFile))
        func restore() throws { try pristine.write(to: folder.appendingPathComponent(Format.weightsFile)) }
        let layer = "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2"

        // Bit widths without an integer path.
        try rewrite(folder) { _, meta in meta["layers"] = meta["layers"]!.replacingOccurrences(
            of: "\"\(layer)\":{\"activation_bits\":8,\"rest_bits\":8,\"weight_bits\":8}",
            with: "\"\(layer)\":{\"activation_bits\":8,\"rest_bits\":8,\"weight_bits\":16}") }
        assertLoadFails(folder, mentions: [layer, "16-bit", "no integer path"])
        try restore()
        try rewrite(folder) { _, meta in meta["layers"] = meta["layers"]!.replacingOccurrences(
            of: "\"\(layer)\":{\"activation_bits\":8", with: "\"\(layer)\":{\"activation_bits\":16") }
        assertLoadFails(folder, mentions: [layer, "16-bit activations", "no integer path"])
        try restore()

        // Packed codes truncated, scales of the wrong shape, a zero point that is no code.
        try rewrite(folder) { items, _ in
            guard case .bytes(let b) = items["\(layer).weight_codes"]!.payload else { return }
            items["\(layer).weight_codes"] = SafetensorsItem(name: "\(layer).weight_codes", bytes: Array(b.dropLast(3)))
        }
        assertLoadFails(folder, mentions: ["\(layer).weight_codes", "truncated"])
        try restore()
        try rewrite(folder) { items, _ in
            items["\(layer).weight_scales"] = SafetensorsItem(name: "\(layer).weight_scales", tensor: Tensor(shape: [2, 3], repeating: 1))
        }
        assertLoadFails(folder, mentions: ["\(layer).weight_scales", "[2, 3]"])
        try restore()
        try rewrite(folder) { items, _ in
            items["\(layer).input_zero_points"] = SafetensorsItem(name: "\(layer).input_zero_points", tensor: Tensor(shape: [1], values: [300]))
        }
        assertLoadFails(folder, mentions: ["\(layer).input_zero_points", "300"])
        try restore()

        // A layer the UNet does not have; not a quantized UNet at all; the file cut short.
        try rewrite(folder) { _, meta in meta["layers"] = meta["layers"]!.replacingOccurrences(
            of: "{\"", with: "{\"up_blocks.9.extra\":{\"activation_bits\":8,\"rest_bits\":8,\"weight_bits\":8},\"", options: [], range: nil) }
        assertLoadFails(folder, mentions: ["up_blocks.9.extra", "does not have"])
        try restore()
        try rewrite(folder) { _, meta in meta["layers"] = "[1, 2]" }
        assertLoadFails(folder, mentions: [Format.weightsFile, "layers"])
        try restore()
        try pristine.prefix(pristine.count / 2).write(to: folder.appendingPathComponent(Format.weightsFile))
        assertLoadFails(folder, mentions: [Format.weightsFile])
        try restore()
        XCTAssertNoThrow(try ModelFolder(try Env.model(), unet: folder).loadUNet(), "the restored file loads")
    }
}
