import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// The trained default model (assets/trained-tiny-sdxl): written into a cache with its tokenizers,
/// chosen by `MIXDQ_DEFAULT_MODEL`, and giving diffusers' images (fixtures:
/// scripts/reference/make_trained_fixtures.py, `from_pretrained` on the committed folder).
final class TrainedModelTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("trained_tiny")

    /// The trained model written once per test process by `ensure(in:kind:)`.
    static let model: Result<URL, Error> = Result {
        try DefaultModel.ensure(in: try PipelineFixtures.makeTempDir("trained-model"), kind: .trained)
    }

    override class func tearDown() {
        if case let .success(folder) = model { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        super.tearDown()
    }

    struct Manifest {
        let prompts: [String], seed: UInt64, steps: [Int], sha256: [String: String]

        static func load() throws -> Manifest {
            let url = TrainedModelTests.fixtures.appendingPathComponent("trained.json")
            guard let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
                  let prompts = obj["prompts"] as? [String], let seed = obj["seed"] as? Int,
                  let steps = obj["steps"] as? [Int], let sha = obj["sha256"] as? [String: String] else {
                throw PipelineFixtures.Failure(description: "\(url.path): unexpected layout")
            }
            return Manifest(prompts: prompts, seed: UInt64(seed), steps: steps, sha256: sha)
        }
    }

    func testCacheFolderHoldsTheShippedFilesAndTheSharedTokenizers() throws {
        let folder = try Self.model.get()
        let assets = try TrainedModelAssets.locate()
        XCTAssertEqual(folder.lastPathComponent, try assets.label())
        XCTAssertTrue(folder.lastPathComponent.hasPrefix("trained-tiny-sdxl-"))
        for relative in TrainedModelAssets.files {
            XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent(relative)), try assets.contents(of: relative), relative)
        }
        let bpe = try CLIPTokenizer.bundledAssetsFolder()
        for tokenizer in ["tokenizer", "tokenizer_2"] {
            XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("\(tokenizer)/vocab.json")),
                           try Data(contentsOf: bpe.appendingPathComponent("vocab.json")))
        }
        // The shipped folder itself carries no copy of the 3.5 MB BPE files.
        XCTAssertFalse(FileManager.default.fileExists(atPath: assets.folder.appendingPathComponent("tokenizer").path))
        let scheduler = try String(contentsOf: folder.appendingPathComponent("scheduler/scheduler_config.json"), encoding: .utf8)
        XCTAssertTrue(scheduler.contains("\"v_prediction\""), scheduler)
        XCTAssertTrue(scheduler.contains("\"trailing\""), scheduler)
        // A second call finds the complete folder and returns it as it is.
        let before = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(DefaultModel.stampName).path)
        XCTAssertEqual(try DefaultModel.ensure(in: folder.deletingLastPathComponent(), kind: .trained).path, folder.path)
        let after = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(DefaultModel.stampName).path)
        XCTAssertEqual(before[.modificationDate] as? Date, after[.modificationDate] as? Date)
    }

    func testKindComesFromTheEnvironment() throws {
        XCTAssertEqual(try DefaultModel.Kind.fromEnvironment([:]), .trained)
        XCTAssertEqual(try DefaultModel.Kind.fromEnvironment(["MIXDQ_DEFAULT_MODEL": ""]), .trained)
        XCTAssertEqual(try DefaultModel.Kind.fromEnvironment(["MIXDQ_DEFAULT_MODEL": "random"]), .random)
        XCTAssertEqual(try DefaultModel.Kind.fromEnvironment(["MIXDQ_DEFAULT_MODEL": "trained"]), .trained)
        XCTAssertThrowsError(try DefaultModel.Kind.fromEnvironment(["MIXDQ_DEFAULT_MODEL": "Random "])) { error in
            let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            XCTAssertTrue(text.contains("MIXDQ_DEFAULT_MODEL") && text.contains("Random ") && text.contains("trained or random"), text)
        }
    }

    /// A shipped folder with a file missing is named in the error and leaves no model behind.
    func testIncompleteShippedFolderIsRefusedByName() throws {
        let dir = try PipelineFixtures.makeTempDir("trained-incomplete")
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("trained-tiny-sdxl")
        try FileManager.default.copyItem(at: try TrainedModelAssets.locate().folder, to: copy)
        let missing = copy.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        try FileManager.default.removeItem(at: missing)
        let target = dir.appendingPathComponent("model")
        XCTAssertThrowsError(try DefaultModel.writeTrained(to: target, from: TrainedModelAssets(folder: copy))) { error in
            let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            XCTAssertTrue(text.contains(missing.path), text)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: target.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }, [],
                       "temporary folders left behind")
    }

    /// Our engine on the trained model gives diffusers' latents and images, 1 and 4 steps (v-prediction).
    func testMatchesDiffusersAtOneAndFourSteps() throws {
        let manifest = try Manifest.load()
        let assets = try TrainedModelAssets.locate()
        for (relative, sha) in manifest.sha256.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(try PipelineFixtures.sha256(of: assets.folder.appendingPathComponent(relative)), sha,
                           "\(relative) changed since the fixtures were made; run scripts/reference/make_trained_fixtures.py")
        }
        XCTAssertEqual(manifest.steps, [1, 4])
        let pipeline = try TextToImagePipeline(folder: ModelFolder(try Self.model.get()))
        let emb = try pipeline.encode(manifest.prompts)
        pipeline.releaseTextEncoders()
        let seeds = manifest.prompts.indices.map { manifest.seed + UInt64($0) }
        for steps in manifest.steps {
            var noise = BatchNoise(seeds: seeds)
            let latents = try pipeline.denoise(emb, noise: &noise, steps: steps, guidance: 0, height: 128, width: 128) { _ in }
            let io = try SafetensorsFile(Self.fixtures.appendingPathComponent("steps\(steps).safetensors"))
            PipelineFixtures.assertClose("trained steps\(steps) latents", latents, try io.floatTensor("latents"), relTol: 1e-3)
            for (k, image) in try pipeline.decode(latents).enumerated() {
                let want = try RGBImage.readPNG(Self.fixtures.appendingPathComponent("steps\(steps)_\(k).png"))
                XCTAssertEqual(image.width, want.width)
                XCTAssertEqual(image.height, want.height)
                guard image.width == want.width, image.height == want.height else { continue }
                let p = PipelineFixtures.psnr(image, want)
                print(String(format: "parity trained steps%d image %d PSNR %.2f dB", steps, k, p))
                XCTAssertGreaterThanOrEqual(p, 40, "steps\(steps) image \(k): PSNR \(p) dB < 40")
            }
        }
    }
}
