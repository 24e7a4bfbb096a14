import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQPipeline

/// The original's `lcm_lora.yaml` (model_type 'sd', an LCM-LoRA adapter, LCMScheduler, 4 steps, guidance
/// 1.5) through fp-infer, calib-data, ptq and infer on the tiny SD1.5 pipeline of
/// Tests/Fixtures/sd_pipeline_tiny, its adapter_id pointing at the fixture's kohya LCM-LoRA.
final class SDFlowCLITests: XCTestCase {
    static let fixtures = MixDQCLI.packageRoot.appendingPathComponent("Tests/Fixtures/sd_pipeline_tiny")
    static var model: URL { fixtures.appendingPathComponent("model") }

    struct Workspace { let dir: URL, config: URL, calib: URL, ptq: URL }

    static let workspaceResult: Result<Workspace, MixDQCLI.Failure> = {
        do {
            let dir = try MixDQCLI.tempDir("sd-flow")
            let written = try MixDQCLI.writeConfig(in: dir, name: "lcm.yaml", source: "configs/lcm_lora.yaml")
            let lora = fixtures.appendingPathComponent("lcm_lora").path
            let text = try String(contentsOf: written, encoding: .utf8)
                .replacingOccurrences(of: "adapter_id: \"latent-consistency/lcm-lora-sdv1-5\"", with: "adapter_id: \"\(lora)\"")
            guard text.contains(lora) else { return .failure(MixDQCLI.Failure(description: "lcm_lora.yaml has no adapter_id line")) }
            try Data(text.utf8).write(to: written)
            let calib = dir.appendingPathComponent("calib.h5")
            let ptq = dir.appendingPathComponent("ptq")
            if let failure = try MixDQCLI.calibrateAndQuantize(config: written, outdir: ptq, extra: ["--model", model.path]) {
                return .failure(failure)
            }
            return .success(Workspace(dir: dir, config: written, calib: calib, ptq: ptq))
        } catch {
            return .failure(MixDQCLI.Failure(description: "\(error)"))
        }
    }()

    func workspace(file: StaticString = #filePath, line: UInt = #line) throws -> Workspace {
        try Self.workspaceResult.value(file: file, line: line)
    }

    /// Guidance 1.5 > 1: every prompt gives an unconditional and a conditional row per step (4 prompts, 4 steps).
    func testCalibDataRecordsBothGuidanceRowsOfEveryStep() throws {
        let w = try workspace()
        let log = try String(contentsOf: w.calib.deletingPathExtension().appendingPathExtension("log"), encoding: .utf8)
        XCTAssertTrue(log.contains("4 step(s) x 8 row(s)"), log)
        XCTAssertTrue(log.contains("LCMScheduler") && log.contains("lcm_lora"), log)
        let file = try HDF5File.open(w.calib)
        defer { try? file.close() }
        XCTAssertEqual(try file.readTensor("text_embs").shape, [4, 8, 77, 32])
        XCTAssertFalse(file.exists("added_cond_kwargs/text_embeds"), "SD1.5 has no added embeddings")
        XCTAssertTrue(try file.attribute("rows")?.contains("the empty prompt encoded") == true)
    }

    /// fp-infer with the config reproduces diffusers' StableDiffusionPipeline + fused LCM-LoRA image; infer
    /// with the W8A8 checkpoint makes images of the same size, close to FP but not equal.
    func testFPInferMatchesDiffusersAndInferQuantizes() throws {
        let w = try workspace()
        let fp = w.dir.appendingPathComponent("fp")
        try MixDQCLI.succeed(["fp-infer", "--config", w.config.path, "--model", Self.model.path, "--base-path", fp.path,
                              "--prompt", "a photo of a cat", "--num-imgs", "1"])
        let image = try RGBImage.readPNG(fp.appendingPathComponent("generated_images/0.png"))
        let golden = try RGBImage.readPNG(Self.fixtures.appendingPathComponent("lcm_lora_steps4_0.png"))
        let p = try ImageMetrics.psnr(image, golden)
        print(String(format: "fp-infer lcm_lora.yaml vs diffusers: PSNR %.2f dB", p))
        XCTAssertGreaterThanOrEqual(p, 40)

        let q = w.dir.appendingPathComponent("w8a8")
        try MixDQCLI.succeed(["infer", "--base-path", w.ptq.path, "--model", Self.model.path, "--image-folder", q.path,
                              "--prompt", "a photo of a cat", "--num-imgs", "1"])
        let quantized = try RGBImage.readPNG(q.appendingPathComponent("0.png"))
        let pq = try ImageMetrics.psnr(quantized, image)
        print(String(format: "infer W8A8 vs FP (tiny random SD1.5, LCM-LoRA): PSNR %.2f dB", pq))
        XCTAssertTrue(pq.isFinite, "W8A8 image equals the FP image: quantization did nothing")
        XCTAssertGreaterThan(pq, 15, "W8A8 image unrelated to the FP image")
    }

    /// `forward unet` takes the guidance embedding of an LCM-distilled UNet as 'timestep_cond' and reproduces
    /// diffusers' first UNet call of the lcm_distilled_steps4 case; a wrongly sized one is named.
    func testForwardUNetTakesTimestepCond() throws {
        let dir = try MixDQCLI.tempDir("forward-lcm")
        let golden = try SafetensorsFile(Self.fixtures.appendingPathComponent("lcm_distilled_steps4.safetensors"))
        let timestep = Tensor(shape: [1], values: [try golden.floatTensor("timesteps").scalars[0]])
        let base: [(String, Tensor)] = [("sample", try golden.floatTensor("unet_sample.0")), ("timestep", timestep),
                                        ("encoder_hidden_states", try golden.floatTensor("context"))]
        let input = dir.appendingPathComponent("in.safetensors"), out = dir.appendingPathComponent("out.safetensors")
        try SafetensorsWriter.write(base + [("timestep_cond", try golden.floatTensor("timestep_cond"))], to: input)
        let unet = Self.fixtures.appendingPathComponent("unet_lcm").path
        try MixDQCLI.succeed(["forward", "unet", "--model", unet, "--input", input.path, "--output", out.path])
        let got = try SafetensorsFile(out).floatTensor("out"), want = try golden.floatTensor("eps.0")
        XCTAssertEqual(got.shape, want.shape)
        let maxAbs = zip(got.scalars, want.scalars).map { abs($0 - $1) }.max() ?? .infinity
        let rel = maxAbs / (want.scalars.map(abs).max() ?? 1)
        print(String(format: "forward unet (time_cond_proj_dim) vs diffusers: max-abs %.3e rel %.3e", maxAbs, rel))
        XCTAssertLessThanOrEqual(rel, 1e-5)

        try SafetensorsWriter.write(base + [("timestep_cond", Tensor(zeros: [2, 16]))], to: input)
        try MixDQCLI.fail(["forward", "unet", "--model", unet, "--input", input.path, "--output", out.path],
                          mentioning: [input.path, "timestep_cond", "[2, 32]"])
    }

    /// `search ratios --type act` feeds an LCM-distilled UNet its guidance embedding: `cond_proj` reads
    /// time_cond_proj_dim (32) elements, 0.1 in units of 320.
    func testActRatiosReachTheGuidanceProjection() throws {
        let dir = try MixDQCLI.tempDir("lcm-ratios")
        let out = dir.appendingPathComponent("ratio_act.yaml")
        try MixDQCLI.succeed(["search", "ratios", "--model", Self.fixtures.appendingPathComponent("unet_lcm").path,
                              "--type", "act", "--height", "64", "--width", "64", "--out", out.path])
        let text = try String(contentsOf: out, encoding: .utf8)
        XCTAssertTrue(text.contains("model.time_embedding.cond_proj: 0.1\n"), text)
    }

    /// An SD1.5 folder with an 'sdxl' config is still refused, naming the key; without --config the
    /// error also says the SDXL-Turbo default was taken and what to pass.
    func testSDXLConfigOnTheSDFolderIsRefused() throws {
        let dir = try MixDQCLI.tempDir("sd-mismatch")
        let config = try MixDQCLI.writeConfig(in: dir)
        let explicit = try MixDQCLI.fail(["calib-data", "--config", config.path, "--model", Self.model.path],
                                         mentioning: [config.path, "model.model_type", "model_type: 'sd'"])
        XCTAssertFalse(explicit.errorLine.contains("no --config"), explicit.errorLine)
        try MixDQCLI.fail(["fp-infer", "--model", Self.model.path, "--base-path", dir.appendingPathComponent("fp").path,
                           "--prompt", "a cat", "--num-imgs", "1"],
                          mentioning: ["sdxl_turbo.yaml", "model.model_type", "no --config was given", "configs/lcm_lora.yaml"])
    }
}

/// The original's `sdxl.yaml` (SDXL base: 30 steps, guidance 7.5, 4-bit weights, mixed_precision [2,4,8]) on the
/// random default model given SDXL base's scheduler and model_index.json (Tests/Fixtures/sd_pipeline_tiny/sdxl_base):
/// fp-infer reproduces diffusers' 30-step CFG image; calib-data, ptq and infer run with the config (3 calibration
/// steps, to keep the test short).
final class SDXLBaseFlowCLITests: XCTestCase {
    func testSDXLBaseConfigThroughEveryCommand() throws {
        let dir = try MixDQCLI.tempDir("sdxl-base-flow")
        let model = dir.appendingPathComponent("sdxl-base")
        try FileManager.default.copyItem(at: try MixDQCLI.defaultModel(), to: model)
        let base = SDFlowCLITests.fixtures.appendingPathComponent("sdxl_base")
        for (source, target) in [("scheduler_config.json", "scheduler/scheduler_config.json"), ("model_index.json", "model_index.json")] {
            let url = model.appendingPathComponent(target)
            try FileManager.default.removeItem(at: url)
            try FileManager.default.copyItem(at: base.appendingPathComponent(source), to: url)
        }
        let config = try MixDQCLI.writeConfig(in: dir, nSamples: 2, batchSize: 2, nSteps: 3, name: "sdxl.yaml",
                                              source: "configs/sdxl.yaml")
        let fp = dir.appendingPathComponent("fp")
        try MixDQCLI.succeed(["fp-infer", "--config", config.path, "--model", model.path, "--base-path", fp.path,
                              "--prompt", "a photo of a cat", "--num-imgs", "1", "--steps", "30"])
        let image = try RGBImage.readPNG(fp.appendingPathComponent("generated_images/0.png"))
        let golden = try RGBImage.readPNG(base.deletingLastPathComponent().appendingPathComponent("sdxl_base_cfg_steps30_0.png"))
        let p = try ImageMetrics.psnr(image, golden)
        print(String(format: "fp-infer sdxl.yaml (30 steps, CFG 7.5) vs diffusers: PSNR %.2f dB", p))
        XCTAssertGreaterThanOrEqual(p, 40)

        let ptq = dir.appendingPathComponent("ptq")
        if let failure = try MixDQCLI.calibrateAndQuantize(config: config, outdir: ptq, extra: ["--model", model.path]) {
            throw failure
        }
        let calibLog = try String(contentsOf: dir.appendingPathComponent("calib.log"), encoding: .utf8)
        XCTAssertTrue(calibLog.contains("3 step(s) x 4 row(s)"), calibLog)
        let q = dir.appendingPathComponent("w4a8")
        try MixDQCLI.succeed(["infer", "--base-path", ptq.path, "--model", model.path, "--image-folder", q.path,
                              "--prompt", "a photo of a cat", "--num-imgs", "1", "--steps", "3"])
        XCTAssertNotNil(MixDQCLI.bytes(q.appendingPathComponent("0.png")))
    }
}
