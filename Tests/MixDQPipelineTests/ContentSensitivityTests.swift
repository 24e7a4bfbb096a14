import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline
import MixDQQuant

/// Content-layer sensitivity (SSIM): the FP images are fp-infer's (cached, reused by a rerun) and
/// a layer's score is the mean SSIM of the images `infer` makes with only that layer quantized
/// against them (ImageMetrics itself is checked against skimage in ImageMetricsTests).
final class ContentSensitivityTests: XCTestCase {
    static func ssim(_ a: RGBImage, _ b: RGBImage) throws -> Double { try ImageMetrics.ssim(a, b, windowSize: 7) }

    let settings = ContentSensitivity.Settings(prompts: Array(MixDQPipelineTestEnv.prompts.prefix(2)), seed: 42, steps: 1,
                                               guidance: 0, height: 128, width: 128)

    /// A pipeline whose UNet gets the checkpoint with quantization off, then `adjust`.
    func pipeline(_ s: SensitivityFixture.Setup, adjust: @escaping (QuantSimulator) throws -> Void = { _ in }) throws
        -> (TextToImagePipeline, () -> QuantSimulator?) {
        let p = try TextToImagePipeline(folder: ModelFolder(try MixDQPipelineTestEnv.model()))
        var sim: QuantSimulator?
        p.configureUNet = { unet in
            let installed = try QuantizedInferenceSetup(checkpoint: s.checkpoint, settings: s.settings, weightBits: nil, activationBits: nil,
                                                        actProtect: [], quantizeWeights: false, quantizeActivations: false).apply(to: unet, log: nil)
            try adjust(installed)
            sim = installed
        }
        return (p, { sim })
    }

    func images(_ p: TextToImagePipeline, into folder: URL, log: RunLog) throws -> [RGBImage] {
        let job = ImageGenerationJob(prompts: settings.prompts, seed: settings.seed, batchSize: 1, steps: 1, guidance: 0,
                                     height: 128, width: 128, folder: folder)
        try job.run(p, log: log)
        return try settings.prompts.indices.map { try RGBImage.readPNG(job.imageURL($0)) }
    }

    /// A content (SSIM) run of one layer into `out`, as the CLI wires it.
    func runContent(_ s: SensitivityFixture.Setup, pipeline p: TextToImagePipeline, sim: QuantSimulator, layer: String,
                    type: SensitivityType, out: URL, log: RunLog, stopAfter: Int? = nil) throws -> SensitivityRun.Outcome {
        let plan = try SensitivityPlan(type: type, group: .content, bits: [2, 8], layersPattern: "^\(layer)$", metric: nil, shard: .whole,
                                       modelLayers: sim.paths, availableBits: s.settings.bitWidths)
        let identity = try SensitivityRunIdentity.make(plan: plan, checkpoint: s.checkpoint, settings: s.settings, quality: nil,
                                                       content: .init(settings: settings, ssimWindow: 7))
        var run = SensitivityRun(plan: plan, identity: identity, output: out)
        run.stopAfter = stopAfter
        let work = run.workFolder
        return try run.run(prepare: {
            let c = try ContentSensitivity(pipeline: p, sim: sim, settings: self.settings, workFolder: work, log: log, similarity: Self.ssim)
            return { try c.measure($0, type: type, bits: plan.bits) }
        }, report: { _ in })
    }

    func testScoresEqualSSIMOfInferImagesAgainstFPInferImages() throws {
        let s = try SensitivityFixture.setup()
        let dir = try MixDQPipelineTestEnv.tempDir("content")
        let log = try RunLog(dir.appendingPathComponent("run.log"))
        let layer = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v"   // BOS-aware K/V
        let (p, simRef) = try pipeline(s) { $0.setCachesQuantizedWeights(false) }
        _ = try p.unet
        let sim = try XCTUnwrap(simRef())

        // Direct: infer's setup (one pipeline, its simulator). With quantization off its images are
        // fp-infer's (QuantizedInferenceTests).
        let (q, directSim) = try pipeline(s)
        _ = try q.unet
        let dsim = try XCTUnwrap(directSim())
        let fp = try images(q, into: dir.appendingPathComponent("fp-infer"), log: log)

        for type in SensitivityType.allCases {
            let out = dir.appendingPathComponent("\(type.rawValue).yaml")
            let work = URL(fileURLWithPath: out.path + ".work")
            if type == .weight {
                // Stopped before the first layer: the FP images are cached, and they are fp-infer's.
                XCTAssertEqual(try runContent(s, pipeline: p, sim: sim, layer: layer, type: type, out: out, log: log, stopAfter: 0),
                               .stopped(journaled: 0))
                for i in fp.indices {
                    XCTAssertEqual(try RGBImage.readPNG(work.appendingPathComponent("fp/\(i).png")), fp[i], "cached FP image \(i) is not fp-infer's")
                }
            }
            XCTAssertEqual(try runContent(s, pipeline: p, sim: sim, layer: layer, type: type, out: out, log: log), .complete(measured: 1))
            let got = try XCTUnwrap(try SensitivityFile.load(out).scores[layer])
            // One layer quantized through a bit config, infer's images, SSIM against fp-infer's.
            for (k, bits) in [2, 8].enumerated() {
                let config = BitConfig(bits: [layer: bits], source: "direct.yaml")
                if type == .weight { try dsim.applyWeightBits(config); dsim[layer]!.weightEnabled = true }
                else { try dsim.applyActivationBits(config); dsim[layer]!.activationEnabled = true }
                let direct = try images(q, into: dir.appendingPathComponent("\(type.rawValue)-\(bits)"), log: log)
                dsim.setQuantState(weight: false, activation: false)
                let want = try zip(direct, fp).map { try Self.ssim($0, $1) }.reduce(0, +) / Double(fp.count)
                XCTAssertEqual(got[k], want, "\(type) \(layer) at \(bits) bits")
            }
            XCTAssertLessThan(got[0], 1, "\(type): 2 bits changed no image (a vacuous comparison)")
            XCTAssertLessThanOrEqual(got[0], got[1], "\(type): 2 bits should hurt at least as much as 8")
            XCTAssertFalse(FileManager.default.fileExists(atPath: work.path), "FP image cache left after completion")
            print("content SSIM \(type.rawValue) \(layer): \(got)")
        }
        // The resumed weight run reused the cached FP images.
        let logText = try String(contentsOf: log.url, encoding: .utf8)
        XCTAssertTrue(logText.contains("generating 0 image(s) (2 of this shard's 2 already present) into \(dir.path)/weight.yaml.work/fp"), logText)
    }
}
