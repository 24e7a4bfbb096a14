import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQQuant

let fixturesURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

/// A tiny SDXL UNet from the committed fixture, and its inputs.
func tinyUNet() throws -> (UNet2DConditionModel, UNetInputs) {
    let dir = fixturesURL.appendingPathComponent("unet_sdxl_tiny")
    let unet = try UNet2DConditionModel(config: try UNetConfig.load(dir.appendingPathComponent("unet/config.json")),
                                        weights: try SafetensorsWeightSource.open(folder: dir.appendingPathComponent("unet")))
    let io = try SafetensorsFile(dir.appendingPathComponent("io.safetensors"))
    let inputs = UNetInputs(sample: try io.floatTensor("sample", copy: true), timesteps: try io.floatTensor("timestep").scalars,
                            encoderHiddenStates: try io.floatTensor("encoder_hidden_states", copy: true),
                            textEmbeds: try io.floatTensor("text_embeds"), timeIds: try io.floatTensor("time_ids"))
    return (unet, inputs)
}

func sqnr(_ got: Tensor, _ ref: Tensor) -> Double {
    var s = 0.0, n = 0.0
    for i in 0..<ref.count { let r = Double(ref.data[i]); s += r * r; n += (Double(got.data[i]) - r) * (Double(got.data[i]) - r) }
    return 10 * log10(s / max(n, 1e-30))
}

final class QuantSimulatorTests: XCTestCase {
    /// PTQ on the tiny UNet: weights, then activation calibration on two batches.
    func calibrated(bos: Bool = true) throws -> (UNet2DConditionModel, UNetInputs, QuantSimulator, Tensor) {
        let (unet, inputs) = try tinyUNet()
        let fp = try unet(inputs)
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings(bosAware: bos))
        try sim.calibrateWeights()
        sim.setQuantState(weight: true, activation: true)
        sim.setCalibratingActivations(true)
        _ = try unet(inputs)
        _ = try unet(inputs)
        sim.setCalibratingActivations(false)
        return (unet, inputs, sim, fp)
    }

    func testEveryConvAndLinearIsASite() throws {
        let (unet, _) = try tinyUNet()
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings())
        XCTAssertEqual(sim.layers.count, unet.layers.count)
        XCTAssertEqual(sim.layers.filter { $0.layer is Conv2d }.count, 51)
        XCTAssertNotNil(sim["down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"])
        XCTAssertNotNil(sim["up_blocks.0.resnets.0.conv_shortcut"])
        XCTAssertTrue(sim["up_blocks.0.resnets.0.conv_shortcut"]!.isSplit)
        XCTAssertFalse(sim["down_blocks.1.resnets.0.conv_shortcut"]!.isSplit)
    }

    func testQuantizationOffEqualsFPExactly() throws {
        // The FP reference is the inference-packed model fp-infer runs.
        let dir = fixturesURL.appendingPathComponent("unet_sdxl_tiny")
        let packed = try UNet2DConditionModel(config: try UNetConfig.load(dir.appendingPathComponent("unet/config.json")),
                                              weights: try SafetensorsWeightSource.open(folder: dir.appendingPathComponent("unet")),
                                              packForInference: true)
        let (unet, inputs) = try tinyUNet()
        let fp = try packed(inputs)
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings())
        try sim.calibrateWeights()
        sim.setQuantState(weight: false, activation: false)
        XCTAssertEqual(try unet(inputs).scalars, fp.scalars)
    }

    func testW8A8IsCloseAndW4IsWorse() throws {
        let (unet, inputs, sim, fp) = try calibrated()
        let w8a8 = sqnr(try unet(inputs), fp)
        for l in sim.layers { l.weightBits = 4 }
        let w4a8 = sqnr(try unet(inputs), fp)
        print(String(format: "tiny UNet SQNR: W8A8 %.1f dB, W4A8 %.1f dB", w8a8, w4a8))
        XCTAssertGreaterThan(w8a8, 25)
        XCTAssertLessThan(w4a8, w8a8)
    }

    func testUncachedWeightsGiveTheSameOutput() throws {
        let (unet, inputs, sim, _) = try calibrated()
        for setting in [(true, false), (true, true)] {
            sim.setQuantState(weight: setting.0, activation: setting.1)
            sim.setCachesQuantizedWeights(true)
            let cached = try unet(inputs)
            sim.setCachesQuantizedWeights(false)
            let uncached = try unet(inputs)
            XCTAssertEqual(cached.scalars, uncached.scalars, "weight \(setting.0) act \(setting.1)")
        }
    }

    func testBOSTokenKVEqualsFPBitForBit() throws {
        let (unet, inputs, sim, _) = try calibrated()
        let path = "down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k"
        let layer = unet.registry[path] as! Linear
        let ctx = inputs.encoderHiddenStates
        let quantized = try layer(ctx)
        sim.setQuantState(weight: false, activation: false)
        let reference = try layer(ctx)
        let (b, n, c) = (ctx.shape[0], ctx.shape[1], layer.outFeatures)
        var others = 0
        for i in 0..<b {
            for j in 0..<c { XCTAssertEqual(quantized.data[i * n * c + j], reference.data[i * n * c + j]) }
            for j in c..<(n * c) where quantized.data[i * n * c + j] != reference.data[i * n * c + j] { others += 1 }
        }
        XCTAssertGreaterThan(others, 0, "tokens 1... are quantized")
    }

    func testBOSTokenStaysOutOfActivationRanges() throws {
        let (unet, inputs) = try tinyUNet()
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings(bitWidths: [8]))
        try sim.calibrateWeights()
        sim.setQuantState(weight: true, activation: true)
        sim.setCalibratingActivations(true)
        // Token 0 gets a huge outlier, as CLIP's BOS hidden state has.
        let ctx = inputs.encoderHiddenStates
        let (b, n, c) = (ctx.shape[0], ctx.shape[1], ctx.shape[2])
        for i in 0..<b { for j in 0..<c { ctx.data[i * n * c + j] = 1000 } }
        _ = try unet(inputs)
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<b { for t in 1..<n { for j in 0..<c { lo = min(lo, ctx.data[(i * n + t) * c + j]); hi = max(hi, ctx.data[(i * n + t) * c + j]) } } }
        let kv = sim.layers.filter(\.bosAware)
        XCTAssertFalse(kv.isEmpty)
        for l in kv {
            XCTAssertEqual(l.observers[0].rangeMin, lo, l.path)
            XCTAssertEqual(l.observers[0].rangeMax, hi, l.path)
        }
        // Without BOS awareness the outlier sets the range.
        let q = sim.layers.first { $0.path.hasSuffix("attn2.to_q") }!
        XCTAssertFalse(q.bosAware)
    }

    func testSplitShortcutQuantizesPartsSeparately() throws {
        // A stand-alone 1x1 shortcut with split 3 of 5 input channels.
        let w = Tensor(shape: [2, 5, 1, 1], values: [0.5, -0.25, 1, 8, -4, 0.1, 0.2, -0.3, 2, 6])
        let conv = try Conv2d(path: "up_blocks.0.resnets.0.conv_shortcut", weight: w, bias: Tensor(shape: [2], values: [0.1, -0.2]))
        conv.role = .concatShortcut(split: 3)
        let registry = LayerRegistry()
        registry.register(conv)
        let sim = try QuantSimulator(registry: registry, settings: QuantSettings(bitWidths: [4], weightBits: 4, activationBits: 4))
        try sim.calibrateWeights()
        sim.setQuantState(weight: true, activation: true)
        sim.setCalibratingActivations(true)
        // h part in [-1, 1], skip part in [-10, 10].
        let x = FeatureMap(Tensor(shape: [1, 2, 1, 5], values: [-1, 0.3, 1, -10, 7, 0.5, -0.7, 0.2, 10, -3.3]))
        let y = try conv(x)
        let state = sim["up_blocks.0.resnets.0.conv_shortcut"]!
        XCTAssertEqual(state.observers[0].rangeMin, -1); XCTAssertEqual(state.observers[0].rangeMax, 1)
        XCTAssertEqual(state.observers[1].rangeMin, -10); XCTAssertEqual(state.observers[1].rangeMax, 10)
        // Weight parts: per output channel over columns [0,3) and [3,5).
        XCTAssertEqual(state.weightParameters[0][0].delta, [Float(1) / 7, Float(0.3) / 7])
        XCTAssertEqual(state.weightParameters[1][0].delta, [Float(8) / 7, Float(6) / 7])
        // Reference: quantize each part by hand, then a plain dot product.
        let wq = try state.quantizedWeight(bits: 4)
        for p in 0..<2 {
            for o in 0..<2 {
                var acc: Float = o == 0 ? 0.1 : -0.2
                for ci in 0..<5 {
                    let part = ci < 3 ? 0 : 1
                    let (d, z) = state.observers[part].parameters(bits: 4)
                    let xi = x.tensor.data[p * 5 + ci]
                    let xq = (min(max((xi / d).rounded(.toNearestOrEven) + z, 0), 15) - z) * d
                    acc += xq * wq.data[o * 5 + ci]
                }
                XCTAssertEqual(y.tensor.data[p * 2 + o], acc, accuracy: 1e-5)
            }
        }
        // The skip part keeps its own scale: a shared per-tensor scale would be 20/15, not 2/15.
        XCTAssertEqual(state.observers[0].parameters(bits: 4).delta, Float(2) / 15)
    }

    func testCheckpointRoundTrip() throws {
        let (unet, inputs, sim, _) = try calibrated()
        let before = try unet(inputs)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-ckpt-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("quant.safetensors")
        try QuantCheckpoint.save(sim, to: url)

        let (unet2, _) = try tinyUNet()
        let sim2 = try QuantSimulator(registry: unet2.registry, settings: QuantSettings())
        try QuantCheckpoint.load(url, into: sim2)
        for (a, b) in zip(sim.layers, sim2.layers) {
            XCTAssertEqual(a.weightParameters, b.weightParameters, a.path)
            for (oa, ob) in zip(a.observers, b.observers) {
                XCTAssertEqual(oa.delta, ob.delta, a.path); XCTAssertEqual(oa.zeroPoint, ob.zeroPoint, a.path)
            }
        }
        sim2.setQuantState(weight: true, activation: true)
        XCTAssertEqual(try unet2(inputs).scalars, before.scalars)
        // Split parts are stored under the original's names.
        let file = try SafetensorsFile(url)
        XCTAssertTrue(file.contains("up_blocks.0.resnets.0.conv_shortcut.act_quantizer_0.delta_list"))
        XCTAssertTrue(file.contains("up_blocks.0.resnets.0.conv_shortcut.weight_quantizer_0.delta_list"))
        XCTAssertEqual(try file.info("conv_in.weight_quantizer.delta_list").shape, [3, 32])
    }

    func testBitYAMLAppliesToNamedLayers() throws {
        let (unet, _) = try tinyUNet()
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings())
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-bits-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("weight.yaml")
        try "model.conv_in: 4\nmodel.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k: 2\n".write(to: good, atomically: true, encoding: .utf8)
        try sim.applyWeightBits(try BitConfig.load(good))
        XCTAssertEqual(sim["conv_in"]!.weightBits, 4)
        XCTAssertEqual(sim["down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"]!.weightBits, 2)
        XCTAssertEqual(sim["conv_out"]!.weightBits, 8)

        let unknown = dir.appendingPathComponent("unknown.yaml")
        try "model.conv_in: 4\nmodel.not.a.layer: 8\n".write(to: unknown, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try sim.applyWeightBits(try BitConfig.load(unknown))) {
            XCTAssertTrue("\($0)".contains("not.a.layer"), "\($0)")
        }
        let badBits = dir.appendingPathComponent("bits.yaml")
        try "model.conv_in: 3\n".write(to: badBits, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try sim.applyWeightBits(try BitConfig.load(badBits))) {
            XCTAssertTrue("\($0)".contains("conv_in: 3"), "\($0)")
        }
        let protect = dir.appendingPathComponent("protect.yaml")
        try "- model.conv_in\n- conv_out\n".write(to: protect, atomically: true, encoding: .utf8)
        sim.setQuantState(weight: true, activation: true)
        try sim.protect(try BitConfig.loadLayerList(protect))
        XCTAssertFalse(sim["conv_in"]!.weightEnabled); XCTAssertFalse(sim["conv_out"]!.activationEnabled)
        XCTAssertTrue(sim["down_blocks.0.resnets.0.conv1"]!.weightEnabled)
    }
}
