import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline
import MixDQQuant

/// PostTrainingQuantization and QuantizedInferenceSetup (what `ptq` and `infer` run), on the
/// embedded default model with 4 calibration rows (issue "MixDQ quantization" 7).
final class QuantizedInferenceTests: XCTestCase {
    typealias Env = MixDQPipelineTestEnv

    /// Calibration data (4 prompts, batch 2, 1 step, no CFG), the settings of configs/sdxl_turbo.yaml
    /// and one checkpoint, made once.
    struct Setup {
        let dir: URL, calib: URL, checkpoint: URL, settings: QuantSettings
    }

    static let setupResult: Result<Setup, Env.Failure> = {
        do {
            let dir = try Env.tempDir("quant")
            let pipeline = try TextToImagePipeline(folder: ModelFolder(try Env.model()))
            let calib = dir.appendingPathComponent("calib.h5")
            let log = try RunLog(dir.appendingPathComponent("run.log"))
            try CalibrationDataGenerator(prompts: Env.prompts, batchSize: 2, steps: 1, guidance: 0, height: 128, width: 128,
                                         seed: 42, output: calib, imageFolder: nil).run(pipeline, log: log)
            let settings = try QuantSettings(try Env.sdxlTurboConfig())
            let checkpoint = dir.appendingPathComponent("ckpt.safetensors")
            try ptq(settings: settings, calib: calib, checkpoint: checkpoint, seed: 42, log: log)
            return .success(Setup(dir: dir, calib: calib, checkpoint: checkpoint, settings: settings))
        } catch {
            return .failure(Env.Failure(description: "quantization setup: \(error)"))
        }
    }()

    func setup(file: StaticString = #filePath, line: UInt = #line) throws -> Setup {
        switch Self.setupResult {
        case let .success(s): return s
        case let .failure(e):
            XCTFail(e.description, file: file, line: line)
            throw e
        }
    }

    static func ptq(settings: QuantSettings, calib: URL, checkpoint: URL, seed: UInt64, log: RunLog) throws {
        let unet = try ModelFolder(try Env.model()).loadUNet()
        let data = try CalibrationData.load(calib)
        try PostTrainingQuantization(settings: settings, batchSize: 2, nSamples: nil, seed: seed)
            .run(unet: unet, data: data, checkpoint: checkpoint, log: log, metadata: ["test": "QuantizedInferenceTests"])
    }

    func quantSetup(_ s: Setup, weightBits: BitConfig? = nil, activationBits: BitConfig? = nil, protect: [String] = [],
                    weights: Bool = true, activations: Bool = true) -> QuantizedInferenceSetup {
        QuantizedInferenceSetup(checkpoint: s.checkpoint, settings: s.settings, weightBits: weightBits,
                                activationBits: activationBits, actProtect: protect,
                                quantizeWeights: weights, quantizeActivations: activations)
    }

    /// Two calibration rows as one UNet batch.
    func inputs(_ s: Setup) throws -> UNetInputs {
        let b = try CalibrationData.load(s.calib).batch([0, 3])
        return b
    }

    func testPTQIsDeterministicForASeed() throws {
        let s = try setup()
        let again = s.dir.appendingPathComponent("again.safetensors")
        try Self.ptq(settings: s.settings, calib: s.calib, checkpoint: again, seed: 42, log: try RunLog(s.dir.appendingPathComponent("again.log")))
        let a = try Data(contentsOf: s.checkpoint), b = try Data(contentsOf: again)
        XCTAssertGreaterThan(a.count, 1000)
        XCTAssertTrue(a == b, "two ptq runs with seed 42 wrote different checkpoints")

        // The calibration order: a seeded permutation.
        let order = PostTrainingQuantization.shuffledIndices(16, seed: 42)
        XCTAssertEqual(order, PostTrainingQuantization.shuffledIndices(16, seed: 42))
        XCTAssertEqual(order.sorted(), Array(0..<16))
        XCTAssertNotEqual(order, PostTrainingQuantization.shuffledIndices(16, seed: 43))
        XCTAssertEqual(PostTrainingQuantization.shuffledIndices(1, seed: 42), [0])
    }

    func testPTQNeedsAtLeastOneBatch() throws {
        let s = try setup()
        let unet = try ModelFolder(try Env.model()).loadUNet()
        let data = try CalibrationData.load(s.calib)
        XCTAssertThrowsError(try PostTrainingQuantization(settings: s.settings, batchSize: data.count + 1, nSamples: nil, seed: 42)
            .run(unet: unet, data: data, checkpoint: s.dir.appendingPathComponent("never.safetensors"),
                 log: try RunLog(s.dir.appendingPathComponent("never.log")))) { error in
            XCTAssertTrue("\(error)".contains("batch_size"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir.appendingPathComponent("never.safetensors").path))
    }

    func testQuantizationOffEqualsFPExactly() throws {
        let s = try setup()
        let folder = ModelFolder(try Env.model())
        let x = try inputs(s)
        // The FP reference is the inference-packed UNet that fp-infer runs.
        let fp = try folder.loadUNet(packForInference: true)(x)

        let offUNet = try folder.loadUNet()
        try quantSetup(s, weights: false, activations: false).apply(to: offUNet, log: nil)
        XCTAssertEqual(Env.values(try offUNet(x)), Env.values(fp), "weights and activations off must be the FP UNet, bit for bit")

        for (w, a) in [(true, true), (true, false), (false, true)] {
            let unet = try folder.loadUNet()
            try quantSetup(s, weights: w, activations: a).apply(to: unet, log: nil)
            let y = try unet(x)
            let d = Env.maxAbsDiff(y, fp)
            XCTAssertGreaterThan(d, 0, "weights \(w), activations \(a): no effect")
            XCTAssertLessThan(d, 0.5 * max(1, Env.maxAbs(fp)), "weights \(w), activations \(a): W8A8 far from FP")
        }
    }

    func testInferWithQuantizationOffWritesTheFPImages() throws {
        let s = try setup()
        let dir = try Env.tempDir("infer-off")
        let folder = ModelFolder(try Env.model())
        func job(_ name: String) -> ImageGenerationJob {
            ImageGenerationJob(prompts: Array(Env.prompts.prefix(2)), seed: 42, batchSize: 2, steps: 1, guidance: 0,
                               height: 128, width: 128, folder: dir.appendingPathComponent(name))
        }
        let log = try RunLog(dir.appendingPathComponent("run.log"))
        try job("fp").run(try TextToImagePipeline(folder: folder), log: log)
        let off = try TextToImagePipeline(folder: folder)
        let setup = quantSetup(s, weights: false, activations: false)
        off.configureUNet = { unet in try setup.apply(to: unet, log: log) }
        try job("off").run(off, log: log)
        for i in 0..<2 {
            let a = try Data(contentsOf: job("fp").imageURL(i)), b = try Data(contentsOf: job("off").imageURL(i))
            XCTAssertTrue(a == b, "image \(i): quantization off differs from FP")
        }
    }

    /// The whole pipeline on the INT8 backend against fake quant (and both against FP): 4 images,
    /// 128x128, 1 step, W8A8 from the shared checkpoint. The two backends are one quantizer and differ
    /// by float rounding moving a few activations across quantization boundaries (see
    /// Int8BackendTests), so INT8's images must be as close to FP as fake quant's (within 1 dB PSNR) and
    /// at least 30 dB PSNR from fake quant's.
    func testInt8PipelineMatchesFakeQuantImages() throws {
        let s = try setup()
        let dir = try Env.tempDir("infer-int8")
        let folder = ModelFolder(try Env.model())
        func job(_ name: String) -> ImageGenerationJob {
            ImageGenerationJob(prompts: Env.prompts, seed: 42, batchSize: 2, steps: 1, guidance: 0,
                               height: 128, width: 128, folder: dir.appendingPathComponent(name))
        }
        let log = try RunLog(dir.appendingPathComponent("run.log"))
        try job("fp").run(try TextToImagePipeline(folder: folder), log: log)
        for backend in [BackendChoice.fake, .int8] {
            let pipeline = try TextToImagePipeline(folder: folder)
            var setup = quantSetup(s)
            setup.backend = backend
            pipeline.configureUNet = { unet in
                let sim = try setup.deploy(to: unet, log: log)
                XCTAssertEqual(sim.backendName, backend.rawValue)
            }
            try job(backend.rawValue).run(pipeline, log: log)
        }
        for i in 0..<Env.prompts.count {
            let fp = try RGBImage.readPNG(job("fp").imageURL(i))
            let fake = try RGBImage.readPNG(job("fake").imageURL(i)), int8 = try RGBImage.readPNG(job("int8").imageURL(i))
            let (fakeNoise, int8Noise, agreement) = (PipelineFixtures.psnr(fake, fp), PipelineFixtures.psnr(int8, fp), PipelineFixtures.psnr(int8, fake))
            print(String(format: "image %d: PSNR fake vs FP %.1f dB, int8 vs FP %.1f dB, int8 vs fake %.1f dB (max pixel diff %d)",
                         i, fakeNoise, int8Noise, agreement, PipelineFixtures.maxPixelDiff(int8, fake)))
            XCTAssertGreaterThanOrEqual(agreement, 30, "image \(i): int8 images differ from fake quant's")
            XCTAssertGreaterThanOrEqual(int8Noise, fakeNoise - 1, "image \(i): int8 further from FP than fake quant")
        }
    }

    func testMixedPrecisionAndProtectionApplyPerLayer() throws {
        let s = try setup()
        let unet = try ModelFolder(try Env.model()).loadUNet()
        let protected = "down_blocks.0.resnets.0.conv1"
        let sim = try quantSetup(s, weightBits: BitConfig(bits: ["conv_in": 2, "conv_out": 4], source: "w.yaml"),
                                 activationBits: BitConfig(bits: ["conv_out": 4], source: "a.yaml"), protect: [protected])
            .apply(to: unet, log: nil)
        XCTAssertEqual(sim["conv_in"]?.weightBits, 2)
        XCTAssertEqual(sim["conv_out"]?.weightBits, 4)
        XCTAssertEqual(sim["conv_out"]?.activationBits, 4)
        XCTAssertEqual(sim["conv_in"]?.activationBits, 8, "layers not in the activation file keep the default")
        XCTAssertEqual(sim[protected]?.weightEnabled, false, "act-protect keeps the layer fully FP")
        XCTAssertEqual(sim[protected]?.activationEnabled, false)
        XCTAssertEqual(sim["conv_in"]?.weightEnabled, true)
        XCTAssertEqual(sim["conv_in"]?.activationEnabled, true)
        let others = sim.layers.filter { !["conv_in", "conv_out"].contains($0.path) }
        XCTAssertTrue(others.allSatisfy { $0.weightBits == s.settings.weightBits }, "other layers keep the uniform weight bits")

        // 2-bit conv_in changes the output against uniform W8A8.
        let x = try inputs(s)
        let uniform = try ModelFolder(try Env.model()).loadUNet()
        try quantSetup(s).apply(to: uniform, log: nil)
        XCTAssertGreaterThan(Env.maxAbsDiff(try unet(x), try uniform(x)), 0)
    }

    func testBitFilesWithUnknownLayersOrBitsListThem() throws {
        let s = try setup()
        func failure(_ setup: QuantizedInferenceSetup) throws -> String {
            let unet = try ModelFolder(try Env.model()).loadUNet()
            do {
                try setup.apply(to: unet, log: nil)
                XCTFail("expected an error")
                return ""
            } catch {
                return "\(error)"
            }
        }
        let unknown = BitConfig(bits: ["conv_in": 8, "down_blocks.9.nope": 4, "bogus": 2], source: "/x/weight.yaml")
        var m = try failure(quantSetup(s, weightBits: unknown))
        for part in ["/x/weight.yaml", "2 unknown layer", "bogus", "down_blocks.9.nope"] { XCTAssertTrue(m.contains(part), m) }
        XCTAssertFalse(m.contains("conv_in"), m)

        let bits = BitConfig(bits: ["conv_in": 3, "conv_out": 6, "down_blocks.0.resnets.0.conv1": 4], source: "/x/act.yaml")
        m = try failure(quantSetup(s, weightBits: BitConfig(bits: [:], source: "w"), activationBits: bits))
        for part in ["/x/act.yaml", "2 layer(s)", "conv_in: 3", "conv_out: 6", "2, 4, 8"] { XCTAssertTrue(m.contains(part), m) }
        XCTAssertFalse(m.contains("conv1"), m)
        m = try failure(quantSetup(s, weightBits: bits))
        XCTAssertTrue(m.contains("conv_in: 3") && m.contains("conv_out: 6"), m)

        // Many unknown names: counted, the first ten listed.
        let many = BitConfig(bits: Dictionary(uniqueKeysWithValues: (0..<12).map { ("missing.layer\($0)", 8) }), source: "/x/many.yaml")
        m = try failure(quantSetup(s, weightBits: many))
        XCTAssertTrue(m.contains("12 unknown layer") && m.contains("..."), m)

        m = try failure(quantSetup(s, weightBits: BitConfig(bits: [:], source: "w"), activationBits: BitConfig(bits: [:], source: "a"),
                                   protect: ["conv_in", "not_a_layer"]))
        XCTAssertTrue(m.contains("not_a_layer") && !m.contains("conv_in"), m)
    }

    func testBitFilesLoadInTheOriginalFormat() throws {
        let dir = try Env.tempDir("bitfiles")
        func file(_ name: String, _ text: String) throws -> URL {
            let url = dir.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            return url
        }
        let ok = try BitConfig.load(try file("w.yaml", "model.conv_in: 4\nconv_out: 8\nmodel.down_blocks.0.resnets.0.conv1: 2\n"))
        XCTAssertEqual(ok.bits, ["conv_in": 4, "conv_out": 8, "down_blocks.0.resnets.0.conv1": 2])
        XCTAssertEqual(try BitConfig.loadLayerList(try file("p.yaml", "- model.conv_in\n- conv_out\n")), ["conv_in", "conv_out"])

        let cases: [(String, String, [String])] = [
            ("notint.yaml", "model.conv_in: eight\n", ["conv_in", "eight"]),
            ("list.yaml", "- model.conv_in\n", ["mapping"]),
            ("broken.yaml", "model.conv_in: [8\n", []),
        ]
        for (name, text, mentions) in cases {
            let url = try file(name, text)
            XCTAssertThrowsError(try BitConfig.load(url)) { error in
                XCTAssertTrue("\(error)".contains(url.path), "\(error)")
                for m in mentions { XCTAssertTrue("\(error)".contains(m), "\(error)") }
            }
        }
        let absent = dir.appendingPathComponent("absent.yaml")
        XCTAssertThrowsError(try BitConfig.load(absent)) { XCTAssertTrue("\($0)".contains(absent.path), "\($0)") }
        let mapping = try file("map.yaml", "conv_in: 8\n")
        XCTAssertThrowsError(try BitConfig.loadLayerList(mapping)) { XCTAssertTrue("\($0)".contains(mapping.path), "\($0)") }
    }

    func testCheckpointMismatchIsNamed() throws {
        let s = try setup()
        let unet = try ModelFolder(try Env.model()).loadUNet()
        var other = s.settings
        other.bitWidths = [4, 8]
        let setup = QuantizedInferenceSetup(checkpoint: s.checkpoint, settings: other, weightBits: nil, activationBits: nil,
                                            actProtect: [], quantizeWeights: true, quantizeActivations: true)
        XCTAssertThrowsError(try setup.apply(to: unet, log: nil)) { error in
            XCTAssertTrue("\(error)".contains(s.checkpoint.path), "\(error)")
        }
        let notCkpt = try Env.model().appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        let setup2 = QuantizedInferenceSetup(checkpoint: notCkpt, settings: s.settings, weightBits: nil, activationBits: nil,
                                             actProtect: [], quantizeWeights: true, quantizeActivations: true)
        XCTAssertThrowsError(try setup2.apply(to: try ModelFolder(try Env.model()).loadUNet(), log: nil)) { error in
            XCTAssertTrue("\(error)".contains(notCkpt.path) && "\(error)".contains("not a mixdq quant checkpoint"), "\(error)")
        }
    }
}
