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

    func testScoresCompareInferImagesWithFPInferImages() throws {
        let s = try SensitivityFixture.setup()
        let dir = try MixDQPipelineTestEnv.tempDir("content")
        let log = try RunLog(dir.appendingPathComponent("run.log"))
        let layer = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v"   // BOS-aware K/V

        let (p, sim) = try pipeline(s) { $0.setCachesQuantizedWeights(false) }
        _ = try p.unet
        let work = dir.appendingPathComponent("work")
        let content = try ContentSensitivity(pipeline: p, sim: try XCTUnwrap(sim()), settings: settings, workFolder: work, log: log,
                                             similarity: Self.ssim)
        // Direct: infer's setup (one pipeline, its simulator). With quantization off its images are
        // fp-infer's (QuantizedInferenceTests); the cached FP images must be those.
        let (q, directSim) = try pipeline(s)
        _ = try q.unet
        let dsim = try XCTUnwrap(directSim())
        let fp = try images(q, into: dir.appendingPathComponent("fp-infer"), log: log)
        for i in fp.indices {
            XCTAssertEqual(try RGBImage.readPNG(work.appendingPathComponent("fp/\(i).png")), fp[i], "cached FP image \(i) is not fp-infer's")
        }
        // Then one layer quantized through a bit config, its images, the metric against the FP ones.
        for type in SensitivityType.allCases {
            let got = try content.measure(layer, type: type, bits: [2, 8])
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
            print("content SSIM \(type.rawValue) \(layer): \(got)")
        }

        // A rerun reuses the cached FP images (their files are not rewritten).
        let before = try FileManager.default.attributesOfItem(atPath: work.appendingPathComponent("fp/0.png").path)[.modificationDate] as? Date
        Thread.sleep(forTimeInterval: 0.01)
        _ = try ContentSensitivity(pipeline: p, sim: try XCTUnwrap(sim()), settings: settings, workFolder: work, log: log,
                                   similarity: Self.ssim)
        let after = try FileManager.default.attributesOfItem(atPath: work.appendingPathComponent("fp/0.png").path)[.modificationDate] as? Date
        XCTAssertEqual(before, after)
    }
}
