import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// End-to-end parity of `TextToImagePipeline` (the embedded default model) with diffusers'
/// `StableDiffusionXLPipeline` (fixtures: scripts/reference/make_pipeline_fixtures.py), and the
/// batching/sharding/resume invariance of `ImageGenerationJob`.
///
/// The fixtures hold no weights: the model folder is written again by `DefaultModel.write(to:)` and
/// its weights files must hash to what the fixtures were generated from.
final class PipelineParityTests: XCTestCase {
    /// The default model, written once per test process and shared by every test of the class.
    static let model: Result<URL, Error> = Result {
        let dir = try PipelineFixtures.makeTempDir("pipeline-parity")
        let folder = dir.appendingPathComponent("model")
        try DefaultModel.write(to: folder)
        return folder
    }

    static let manifest: Result<PipelineFixtures.Manifest, Error> = Result { try PipelineFixtures.Manifest.load() }

    /// The hash check, done once: nil when the freshly written model is the one of the fixtures.
    static let modelMismatch: Result<String?, Error> = Result {
        try PipelineFixtures.hashMismatch(model: try model.get(), manifest: try manifest.get())
    }

    override class func tearDown() {
        if case let .success(folder) = model { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        super.tearDown()
    }

    /// The model folder, after the hash check (a changed default model fails every test with the same message).
    func modelFolder() throws -> URL {
        if let message = try Self.modelMismatch.get() { throw PipelineFixtures.Failure(description: message) }
        return try Self.model.get()
    }

    func fixtureCase(_ name: String) throws -> PipelineFixtures.Manifest.Case {
        guard let c = try Self.manifest.get().cases.first(where: { $0.name == name }) else {
            throw PipelineFixtures.Failure(description: "model.json has no case \(name)")
        }
        return c
    }

    var seed: UInt64 { (try? Self.manifest.get().seed) ?? 42 }

    // MARK: the model

    func testDefaultModelMatchesFixtureHashes() throws {
        let manifest = try Self.manifest.get()
        XCTAssertEqual(manifest.sha256.count, 4, "model.json should list the 4 weights files")
        XCTAssertEqual(manifest.version, DefaultModel.version,
                       "the embedded default model changed version; regenerate fixtures with \(PipelineFixtures.regenerate)")
        XCTAssertNil(try Self.modelMismatch.get())
        for (rel, sha) in manifest.sha256.sorted(by: { $0.key < $1.key }) { print("default model \(rel) sha256 \(sha)") }
    }

    // MARK: encode

    func testTokenIDsAndPromptEmbeddings() throws {
        let folder = try modelFolder()
        let c = try fixtureCase("steps1")
        let io = try SafetensorsFile(PipelineFixtures.dir.appendingPathComponent("steps1.safetensors"))
        for (k, name) in ["tokenizer", "tokenizer_2"].enumerated() {
            let tok = try CLIPTokenizer(folder: folder.appendingPathComponent(name))
            let want = try PipelineFixtures.intValues(io, "ids\(k + 1)")
            XCTAssertEqual(want.count, c.prompts.count * 77)
            for (b, prompt) in c.prompts.enumerated() {
                XCTAssertEqual(tok.encode(prompt), Array(want[(b * 77)..<((b + 1) * 77)]), "\(name) ids of \"\(prompt)\"")
            }
        }
        let pipeline = try TextToImagePipeline(folder: ModelFolder(folder))
        let emb = try pipeline.encode(c.prompts)
        PipelineFixtures.assertClose("prompt_embeds", emb.context, try io.floatTensor("prompt_embeds"), relTol: 1e-4)
        guard let pooled = emb.pooled else { return XCTFail("SDXL encode returned no pooled embedding") }
        PipelineFixtures.assertClose("pooled_prompt_embeds", pooled, try io.floatTensor("pooled_prompt_embeds"), relTol: 1e-4)
    }

    // MARK: the whole pipeline

    /// Runs one fixture case through encode / denoise / decode and compares every stored tensor and the images.
    func runCase(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let folder = try modelFolder()
        let c = try fixtureCase(name)
        let io = try SafetensorsFile(PipelineFixtures.dir.appendingPathComponent("\(name).safetensors"))
        let pipeline = try TextToImagePipeline(folder: ModelFolder(folder))
        let size = try pipeline.defaultSize
        XCTAssertEqual(size, 128)
        let b = c.prompts.count
        let seeds = (0..<b).map { seed + UInt64($0) }

        // Initial latents: the same draw the pipeline makes first, bit for bit.
        let (latents, records) = try PipelineFixtures.denoiseRecorded(name, pipeline, io, prompts: c.prompts, steps: c.steps,
                                                                      guidance: c.guidance, seeds: seeds, size: size,
                                                                      file: file, line: line)
        for r in records {
            if r.step == 0 {
                if let ids = r.timeIds {
                    let (a, _) = PipelineFixtures.assertClose("\(name) add_time_ids", ids, try io.floatTensor("add_time_ids"), relTol: 0)
                    XCTAssertEqual(a, 0, file: file, line: line)
                } else {
                    XCTFail("\(name): no time ids", file: file, line: line)
                }
                PipelineFixtures.assertClose("\(name) unet context", r.context, try io.floatTensor("prompt_embeds"), relTol: 1e-4)
                if let te = r.textEmbeds {
                    PipelineFixtures.assertClose("\(name) unet text_embeds", te, try io.floatTensor("pooled_prompt_embeds"), relTol: 1e-4)
                } else {
                    XCTFail("\(name): no text embeds", file: file, line: line)
                }
            }
            PipelineFixtures.assertClose("\(name) unet_sample.\(r.step)", r.sample, try io.floatTensor("unet_sample.\(r.step)"), relTol: 1e-4)
            PipelineFixtures.assertClose("\(name) eps.\(r.step)", r.output, try io.floatTensor("eps.\(r.step)"), relTol: 1e-4)
        }
        PipelineFixtures.assertClose("\(name) latents", latents, try io.floatTensor("latents"), relTol: 1e-4)

        try PipelineFixtures.assertImages(try pipeline.decode(latents), name, in: PipelineFixtures.dir, count: b, file: file, line: line)
    }

    func testOneStepMatchesDiffusers() throws { try runCase("steps1") }
    func testTwoStepsMatchDiffusers() throws { try runCase("steps2") }
    func testFourStepsMatchDiffusers() throws { try runCase("steps4") }
    func testClassifierFreeGuidanceMatchesDiffusers() throws { try runCase("cfg_steps2") }

    // MARK: ImageGenerationJob

    func testImageGenerationJobIsIndependentOfBatchingShardingAndResume() throws {
        let folder = try modelFolder()
        let prompts = try Self.manifest.get().prompts
        let root = try PipelineFixtures.makeTempDir("pipeline-job")
        defer { try? FileManager.default.removeItem(at: root) }
        let log = try RunLog(root.appendingPathComponent("run.log"))
        func job(_ sub: String, batch: Int, shard: ImageGenerationJob.Shard = .init(index: 0, count: 1)) -> ImageGenerationJob {
            ImageGenerationJob(prompts: prompts, seed: seed, batchSize: batch, steps: 2, guidance: 0, height: 128, width: 128,
                               folder: root.appendingPathComponent(sub), shard: shard)
        }
        func run(_ j: ImageGenerationJob) throws -> Int {
            try j.run(try TextToImagePipeline(folder: ModelFolder(folder)), log: log)
        }
        func bytes(_ sub: String, _ i: Int) throws -> Data {
            try Data(contentsOf: root.appendingPathComponent(sub).appendingPathComponent("\(i).png"))
        }
        func modified(_ sub: String, _ i: Int) throws -> Date {
            let attrs = try FileManager.default.attributesOfItem(atPath: root.appendingPathComponent(sub).appendingPathComponent("\(i).png").path)
            return try XCTUnwrap(attrs[.modificationDate] as? Date)
        }

        XCTAssertEqual(try run(job("batch2", batch: 2)), 2)
        XCTAssertEqual(try run(job("batch1", batch: 1)), 2)
        XCTAssertEqual(try run(job("sharded", batch: 2, shard: .init(index: 0, count: 2))), 1)
        XCTAssertEqual(try run(job("sharded", batch: 2, shard: .init(index: 1, count: 2))), 1)
        for i in prompts.indices {
            let reference = try bytes("batch2", i)
            XCTAssertEqual(try bytes("batch1", i), reference, "image \(i): batch size 1 vs 2 differ")
            XCTAssertEqual(try bytes("sharded", i), reference, "image \(i): shards 0/2 + 1/2 vs one run differ")
            // Image i uses seed + i: the same as diffusers' 2-step batch with generators manual_seed(42 + i).
            let got = try RGBImage.readPNG(root.appendingPathComponent("batch2/\(i).png"))
            let want = try RGBImage.readPNG(PipelineFixtures.dir.appendingPathComponent("steps2_\(i).png"))
            let p = PipelineFixtures.psnr(got, want)
            print(String(format: "parity %-34@ PSNR %.2f dB", "job image \(i) vs steps2" as NSString, p))
            XCTAssertGreaterThanOrEqual(p, 40)
        }

        // Resume: a rerun finds everything present and writes nothing.
        let before = try prompts.indices.map { try modified("batch2", $0) }
        Thread.sleep(forTimeInterval: 1.1)
        XCTAssertEqual(try run(job("batch2", batch: 2)), 0, "a rerun must skip existing images")
        XCTAssertEqual(try prompts.indices.map { try modified("batch2", $0) }, before, "a rerun must not rewrite images")

        // Only a missing image is regenerated, identically.
        let last = prompts.count - 1
        let saved = try bytes("batch2", last)
        try FileManager.default.removeItem(at: root.appendingPathComponent("batch2/\(last).png"))
        XCTAssertEqual(job("batch2", batch: 2).pending, [last])
        XCTAssertEqual(try run(job("batch2", batch: 2)), 1)
        XCTAssertEqual(try bytes("batch2", last), saved, "a resumed image must be identical")
        XCTAssertEqual(try modified("batch2", 0), before[0], "resume must not touch the images already present")
    }

    /// A guidance scale at the top of the float range overflows `eps_u + g (eps_c - eps_u)`: the
    /// job stops at that image and step with an error naming both, and writes no image for it.
    func testNonFiniteLatentStopsTheImageNamingIndexAndStep() throws {
        let folder = try modelFolder()
        let root = try PipelineFixtures.makeTempDir("pipeline-nonfinite")
        defer { try? FileManager.default.removeItem(at: root) }
        let log = try RunLog(root.appendingPathComponent("run.log"))
        let job = ImageGenerationJob(prompts: ["a red bicycle"], seed: seed, batchSize: 1, steps: 2,
                                     guidance: .greatestFiniteMagnitude, height: 128, width: 128,
                                     folder: root.appendingPathComponent("images"))
        XCTAssertThrowsError(try job.run(try TextToImagePipeline(folder: ModelFolder(folder)), log: log)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("image 0"), text)
            XCTAssertTrue(text.contains("latent") && text.contains("at step 0"), text)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: job.imageURL(0).path), "no image may be written for a failed generation")
    }
}
