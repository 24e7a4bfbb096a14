import Foundation
import XCTest

/// A config that asks for what the model folder is not (the original's lcm_lora.yaml, model_type
/// 'sd', on the SDXL default model) or for a Hub LoRA id stops every command that reads a config,
/// naming the file and key, before any output is written.
final class ConfigRequestCLITests: XCTestCase {
    func testLCMLoRAConfigFailsLoudlyInEveryCommand() throws {
        let model = try MixDQCLI.defaultModel()
        let lcm = MixDQCLI.packageRoot.appendingPathComponent("configs/lcm_lora.yaml").path
        let dir = try MixDQCLI.tempDir("lcm-config")
        let mentions = [lcm, "model.model_type", "'sd'"]
        let commands: [[String]] = [
            ["fp-infer", "--base-path", dir.appendingPathComponent("fp").path, "--num-imgs", "1", "--prompt", "a cat"],
            ["calib-data", "--log", dir.appendingPathComponent("calib.log").path],
            ["ptq", "--outdir", dir.appendingPathComponent("ptq").path],
            ["infer", "--base-path", dir.appendingPathComponent("infer").path, "--num-imgs", "1", "--prompt", "a cat"],
            ["quantize", "--ckpt", dir.appendingPathComponent("ptq").path, "--out", dir.appendingPathComponent("q").path],
        ]
        for args in commands {
            try MixDQCLI.fail(args + ["--config", lcm, "--model", model.path], mentioning: mentions)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("ptq/config.yaml").path),
                       "ptq wrote its config copy before checking the model")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("fp/generated_images").path))
    }

    func testHubAdapterOnAMatchingModelSaysWhatToPass() throws {
        let model = try MixDQCLI.defaultModel()
        let dir = try MixDQCLI.tempDir("hub-adapter")
        let config = try MixDQCLI.writeConfig(in: dir)
        let text = try String(contentsOf: config, encoding: .utf8)
            .replacingOccurrences(of: "model_type: 'sdxl'", with: "model_type: 'sdxl'\n    adapter_id: \"latent-consistency/lcm-lora-sdxl\"")
        try Data(text.utf8).write(to: config)
        try MixDQCLI.fail(["calib-data", "--config", config.path, "--model", model.path],
                          mentioning: [config.path, "model.adapter_id", "pytorch_lora_weights.safetensors"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("calib.h5").path))
    }
}

/// A config with a local `adapter_id` does what the original does: the LoRA is fused and the
/// scheduler switches to LCMScheduler (built from the folder's scheduler_config.json).
final class AdapterConfigCLITests: XCTestCase {
    func testLocalAdapterFusesAndSwitchesToLCM() throws {
        let model = try MixDQCLI.defaultModel()
        let dir = try MixDQCLI.tempDir("adapter-lcm")
        let config = try MixDQCLI.writeConfig(in: dir)
        let lora = dir.appendingPathComponent("zero_lora.safetensors")
        try LoRACLITests.conv1LoRA(model: model, up: 0, to: lora)
        let text = try String(contentsOf: config, encoding: .utf8)
        let adapterConfig = dir.appendingPathComponent("adapter.yaml")
        try Data(text.replacingOccurrences(of: "model_type: 'sdxl'", with: "model_type: 'sdxl'\n    adapter_id: zero_lora.safetensors").utf8)
            .write(to: adapterConfig)
        func run(_ cfg: URL, _ label: String, _ extra: [String] = []) throws -> (Data?, String) {
            let out = dir.appendingPathComponent(label)
            try MixDQCLI.succeed(["fp-infer", "--config", cfg.path, "--model", model.path, "--base-path", out.path,
                                  "--num-imgs", "1", "--batch-size", "1", "--steps", "2", "--prompt", "a red square"] + extra)
            let log = (try? String(contentsOf: out.appendingPathComponent("run.log"), encoding: .utf8)) ?? ""
            return (MixDQCLI.bytes(out.appendingPathComponent("generated_images/0.png")), log)
        }
        let (base, _) = try run(config, "euler")
        let (lcm, log) = try run(adapterConfig, "lcm")
        XCTAssertNotNil(lcm)
        XCTAssertNotEqual(lcm, base, "the zero LoRA changes nothing, so only the scheduler switch can change the image")
        XCTAssertTrue(log.contains("LCMScheduler") && log.contains("zero_lora.safetensors"), log)
        try MixDQCLI.fail(["fp-infer", "--config", adapterConfig.path, "--model", model.path, "--base-path", dir.appendingPathComponent("both").path,
                           "--num-imgs", "1", "--prompt", "x", "--lora", lora.path], mentioning: ["adapter_id", "--lora"])
    }
}
