import Foundation
import XCTest

/// A config that asks for what mixdq does not do (the original's lcm_lora.yaml: an SD1.5 model,
/// a Hub LoRA id, the LCM scheduler) stops every command that reads a config, naming the file
/// and key, before any output is written.
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
