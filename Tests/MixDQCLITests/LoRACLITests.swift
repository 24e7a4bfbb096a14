import Foundation
import XCTest

/// `--lora FILE [--lora-scale S]` on a command that loads a model: the LoRA reaches the weights the
/// images are made from, and LoRAs or scales that cannot apply are errors.
final class LoRACLITests: XCTestCase {
    /// A rank-1 kohya LoRA on the UNet's conv_in ([out, in, 3, 3] from the model's config.json).
    static func conv1LoRA(model: URL, up: Float, to url: URL) throws {
        let data = try Data(contentsOf: model.appendingPathComponent("unet/config.json"))
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let out = try XCTUnwrap((config["block_out_channels"] as? [Int])?.first)
        let inChannels = try XCTUnwrap(config["in_channels"] as? Int)
        try MixDQCLI.writeSafetensors([
            ("lora_unet_conv_in.lora_down.weight", [1, inChannels, 3, 3], [Float](repeating: 0.5, count: inChannels * 9)),
            ("lora_unet_conv_in.lora_up.weight", [out, 1, 1, 1], [Float](repeating: up, count: out)),
        ], to: url)
    }

    func testLoRAChangesTheImagesAndAZeroLoRADoesNot() throws {
        let model = try MixDQCLI.defaultModel()
        let dir = try MixDQCLI.tempDir("lora-cli")
        let config = try MixDQCLI.writeConfig(in: dir)
        try Self.conv1LoRA(model: model, up: 0, to: dir.appendingPathComponent("zero.safetensors"))
        try Self.conv1LoRA(model: model, up: 0.3, to: dir.appendingPathComponent("real.safetensors"))
        func image(_ label: String, _ extra: [String]) throws -> Data? {
            let out = dir.appendingPathComponent(label)
            try MixDQCLI.succeed(["fp-infer", "--config", config.path, "--model", model.path, "--base-path", out.path,
                                  "--num-imgs", "1", "--batch-size", "1", "--steps", "1", "--prompt", "a red square"] + extra)
            return MixDQCLI.bytes(out.appendingPathComponent("generated_images/0.png"))
        }
        let base = try XCTUnwrap(try image("base", []))
        XCTAssertEqual(try image("zero", ["--lora", dir.appendingPathComponent("zero.safetensors").path]), base,
                       "a LoRA whose up matrix is zero leaves the weights as they were")
        let fused = try XCTUnwrap(try image("real", ["--lora", dir.appendingPathComponent("real.safetensors").path]))
        XCTAssertNotEqual(fused, base, "the LoRA did not reach the UNet")
        XCTAssertEqual(try image("scale0", ["--lora", dir.appendingPathComponent("real.safetensors").path, "--lora-scale", "0"]), base,
                       "--lora-scale 0 fuses nothing")
    }

    func testLoRAForAnotherModelOrBadScaleIsAnError() throws {
        let model = try MixDQCLI.defaultModel()
        let dir = try MixDQCLI.tempDir("lora-cli-bad")
        let config = try MixDQCLI.writeConfig(in: dir)
        let lora = dir.appendingPathComponent("other.safetensors")
        try MixDQCLI.writeSafetensors([("lora_unet_input_blocks_4_1_proj_in.lora_down.weight", [1, 8], nil),
                                       ("lora_unet_input_blocks_4_1_proj_in.lora_up.weight", [8, 1], nil)], to: lora)
        let run = ["fp-infer", "--config", config.path, "--model", model.path, "--base-path", dir.appendingPathComponent("out").path,
                   "--num-imgs", "1", "--batch-size", "1", "--steps", "1", "--prompt", "a cat"]
        try MixDQCLI.fail(run + ["--lora", lora.path], mentioning: [lora.path, "input_blocks_4_1_proj_in"])
        try MixDQCLI.fail(run + ["--lora-scale", "2"], mentioning: ["--lora-scale needs --lora"])
        try MixDQCLI.fail(run + ["--lora", lora.path, "--lora-scale", "nan"], mentioning: ["--lora-scale", "finite"])
        let missing = dir.appendingPathComponent("nowhere.safetensors").path
        try MixDQCLI.fail(run + ["--lora", missing], mentioning: [missing])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/generated_images/0.png").path))
    }
}
