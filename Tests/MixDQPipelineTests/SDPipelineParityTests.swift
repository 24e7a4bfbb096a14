import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// End-to-end parity with diffusers beyond SDXL-Turbo (fixtures: scripts/reference/make_sd_pipeline_fixtures.py):
/// the SD1.5-family `StableDiffusionPipeline` on a tiny committed folder with a fused kohya LCM-LoRA and the
/// LCMScheduler (4 steps, guidance 1.5: CFG whose negative rows encode ""), the same pipeline with an
/// LCM-distilled UNet (`time_cond_proj_dim`: guidance as an embedding, no CFG), and SDXL base (the
/// random default model with SDXL base's EulerDiscreteScheduler, 30 steps, CFG 7.5, zero negative
/// conditioning; and `force_zeros_for_empty_prompt: false`, whose negative rows encode "").
final class SDPipelineParityTests: XCTestCase {
    static let dir = PipelineFixtures.dir.deletingLastPathComponent().appendingPathComponent("sd_pipeline_tiny")
    static let regenerate = "swift build -c release --product mixdq && .venv-reference/bin/python "
        + "scripts/reference/make_sd_pipeline_fixtures.py --mixdq .build/release/mixdq"

    static let manifest: Result<PipelineFixtures.Manifest, Error> = Result {
        try PipelineFixtures.Manifest.load(dir.appendingPathComponent("model.json"))
    }

    /// The random default model written once, checked against the hashes the SDXL goldens were made from.
    static let defaultModel: Result<URL, Error> = Result {
        let folder = try PipelineFixtures.makeTempDir("sd-parity").appendingPathComponent("default")
        try DefaultModel.write(to: folder)
        if let message = try PipelineFixtures.hashMismatch(model: folder, manifest: try manifest.get()) {
            throw PipelineFixtures.Failure(description: message + " (\(regenerate))")
        }
        return folder
    }

    override class func tearDown() {
        if case let .success(folder) = defaultModel { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        super.tearDown()
    }

    /// A copy of the default model with SDXL base's scheduler and model_index.json (force_zeros as given).
    func sdxlBase(forceZeros: Bool) throws -> ModelFolder {
        let source = try Self.defaultModel.get()
        let folder = source.deletingLastPathComponent().appendingPathComponent("sdxl-base-\(forceZeros)")
        if !FileManager.default.fileExists(atPath: folder.path) {
            try FileManager.default.copyItem(at: source, to: folder)
            let scheduler = folder.appendingPathComponent("scheduler/scheduler_config.json")
            try FileManager.default.removeItem(at: scheduler)
            try FileManager.default.copyItem(at: Self.dir.appendingPathComponent("sdxl_base/scheduler_config.json"), to: scheduler)
            let text = try String(contentsOf: Self.dir.appendingPathComponent("sdxl_base/model_index.json"), encoding: .utf8)
            let index = forceZeros ? text : text.replacingOccurrences(of: "\"force_zeros_for_empty_prompt\": true",
                                                                        with: "\"force_zeros_for_empty_prompt\": false")
            XCTAssertTrue(forceZeros || index != text, "model_index.json has no force_zeros_for_empty_prompt: true")
            try Data(index.utf8).write(to: folder.appendingPathComponent("model_index.json"))
        }
        return ModelFolder(folder)
    }

    /// The committed SD1.5 folder, with the LoRA fused or the LCM-distilled UNet, and LCMScheduler.
    func sd(lora: Bool = false, lcmUNet: Bool = false) throws -> ModelFolder {
        var folder = ModelFolder(Self.dir.appendingPathComponent("model"),
                                 unet: lcmUNet ? Self.dir.appendingPathComponent("unet_lcm") : nil)
        if lora { folder.lora = try LoRAWeights.load(Self.dir.appendingPathComponent("lcm_lora"), scale: 1.0) }
        folder.schedulerOverride = .lcm
        return folder
    }

    func fixtureCase(_ name: String) throws -> PipelineFixtures.Manifest.Case {
        guard let c = try Self.manifest.get().cases.first(where: { $0.name == name }) else {
            throw PipelineFixtures.Failure(description: "model.json has no case \(name)")
        }
        return c
    }

    /// Encodes, denoises and decodes one case and compares token ids, conditioning, every UNet input and
    /// output, the final latents (relative error ≤ 1e-4) and the images (PSNR ≥ 40 dB).
    func runCase(_ name: String, _ folder: ModelFolder, file: StaticString = #filePath, line: UInt = #line) throws {
        let c = try fixtureCase(name)
        let io = try SafetensorsFile(Self.dir.appendingPathComponent("\(name).safetensors"))
        let pipeline = try TextToImagePipeline(folder: folder)
        let size = try pipeline.defaultSize
        let b = c.prompts.count
        let seed = try Self.manifest.get().seed
        let seeds = (0..<b).map { seed + UInt64($0) }

        let tokenizerNames = pipeline.isSDXL ? ["tokenizer", "tokenizer_2"] : ["tokenizer"]
        for (k, tname) in tokenizerNames.enumerated() {
            let tok = try CLIPTokenizer(folder: folder.root.appendingPathComponent(tname))
            XCTAssertEqual(c.prompts.flatMap { tok.encode($0) }, try PipelineFixtures.intValues(io, "ids\(k + 1)"),
                           "\(name): \(tname) ids", file: file, line: line)
            if io.keys.contains("negative_ids\(k + 1)") {
                XCTAssertEqual(Array(repeating: tok.encode(""), count: b).flatMap { $0 },
                               try PipelineFixtures.intValues(io, "negative_ids\(k + 1)"), "\(name): \(tname) negative ids",
                               file: file, line: line)
            }
        }

        // Initial latents: the same draw the pipeline makes first, bit for bit.
        let (latents, records) = try PipelineFixtures.denoiseRecorded(name, pipeline, io, prompts: c.prompts, steps: c.steps,
                                                                      guidance: c.guidance, seeds: seeds, size: size,
                                                                      file: file, line: line)
        var worstEps: Float = 0
        for r in records {
            if r.step == 0 {
                PipelineFixtures.assertClose("\(name) context", r.context, try io.floatTensor("context"), relTol: 1e-4, file: file, line: line)
                if io.keys.contains("text_embeds") {
                    let te = try XCTUnwrap(r.textEmbeds, "\(name): no text_embeds", file: file, line: line)
                    PipelineFixtures.assertClose("\(name) text_embeds", te, try io.floatTensor("text_embeds"), relTol: 1e-4, file: file, line: line)
                } else {
                    XCTAssertNil(r.textEmbeds, "\(name): SD1.5 has no added embeddings", file: file, line: line)
                }
                if io.keys.contains("timestep_cond") {
                    let cond = try XCTUnwrap(r.timestepCond, "\(name): no timestep_cond", file: file, line: line)
                    PipelineFixtures.assertClose("\(name) timestep_cond", cond, try io.floatTensor("timestep_cond"), relTol: 1e-6, file: file, line: line)
                } else {
                    XCTAssertNil(r.timestepCond, file: file, line: line)
                }
            }
            // Long runs keep the UNet tensors of steps 0, 9, 19, ... and the last only.
            guard io.keys.contains("eps.\(r.step)") else { continue }
            PipelineFixtures.assertClose("\(name) unet_sample.\(r.step)", r.sample, try io.floatTensor("unet_sample.\(r.step)"),
                                         relTol: 1e-4, file: file, line: line)
            let (_, rel) = PipelineFixtures.assertClose("\(name) eps.\(r.step)", r.output, try io.floatTensor("eps.\(r.step)"),
                                                        relTol: 1e-4, file: file, line: line)
            worstEps = max(worstEps, rel)
        }
        print(String(format: "parity %-34@ worst eps rel %.3e", name as NSString, worstEps))
        PipelineFixtures.assertClose("\(name) latents", latents, try io.floatTensor("latents"), relTol: 1e-4, file: file, line: line)

        try PipelineFixtures.assertImages(try pipeline.decode(latents), name, in: Self.dir, count: b, file: file, line: line)
    }

    func testSD15WithLCMLoRAMatchesDiffusers() throws {
        let folder = try sd(lora: true)
        XCTAssertEqual(try TextToImagePipeline(folder: folder).negativeConditioning, .emptyPrompt)
        try runCase("lcm_lora_steps4", folder)
    }

    func testLCMDistilledUNetTakesGuidanceAsAnEmbedding() throws {
        try runCase("lcm_distilled_steps4", try sd(lcmUNet: true))
    }

    func testSDXLBaseThirtyStepsWithGuidanceMatchesDiffusers() throws {
        let folder = try sdxlBase(forceZeros: true)
        XCTAssertEqual(try TextToImagePipeline(folder: folder).negativeConditioning, .zeros)
        try runCase("sdxl_base_cfg_steps30", folder)
    }

    func testSDXLWithoutForceZerosEncodesTheEmptyPrompt() throws {
        let folder = try sdxlBase(forceZeros: false)
        XCTAssertEqual(try TextToImagePipeline(folder: folder).negativeConditioning, .emptyPrompt)
        try runCase("sdxl_empty_negative_steps2", folder)
    }

    /// The LoRA must matter: without it the same case is far from diffusers' fused result.
    func testLoRAChangesTheSD15Result() throws {
        let c = try fixtureCase("lcm_lora_steps4")
        let pipeline = try TextToImagePipeline(folder: try sd())
        let emb = try pipeline.encode(c.prompts)
        let seed = try Self.manifest.get().seed
        var noise = BatchNoise(seeds: (0..<c.prompts.count).map { seed + UInt64($0) })
        let latents = try pipeline.denoise(emb, noise: &noise, steps: c.steps, guidance: c.guidance, height: 64, width: 64)
        let want = try SafetensorsFile(Self.dir.appendingPathComponent("lcm_lora_steps4.safetensors")).floatTensor("latents")
        let rel = PipelineFixtures.relativeError(latents, want)
        print(String(format: "unfused LoRA: latents rel %.3e from the fused golden", rel))
        XCTAssertGreaterThan(rel, 1e-2)
    }

    func testNegativeConditioningIndexErrorsNameTheFile() throws {
        let dir = try PipelineFixtures.makeTempDir("negative-index")
        defer { try? FileManager.default.removeItem(at: dir) }
        let index = dir.appendingPathComponent("model_index.json")
        try Data(#"{"force_zeros_for_empty_prompt": "yes"}"#.utf8).write(to: index)
        XCTAssertThrowsError(try NegativeConditioning.of(ModelFolder(dir), isSDXL: true)) { error in
            XCTAssertTrue("\(error)".contains(index.path) && "\(error)".contains("force_zeros_for_empty_prompt"), "\(error)")
        }
        try Data("{".utf8).write(to: index)
        XCTAssertThrowsError(try NegativeConditioning.of(ModelFolder(dir), isSDXL: true)) { error in
            XCTAssertTrue("\(error)".contains(index.path), "\(error)")
        }
        XCTAssertEqual(try NegativeConditioning.of(ModelFolder(dir), isSDXL: false), .emptyPrompt, "SD1.5 never reads the flag")
        try FileManager.default.removeItem(at: index)
        XCTAssertEqual(try NegativeConditioning.of(ModelFolder(dir), isSDXL: true), .zeros, "the SDXL pipeline's default")
    }
}
