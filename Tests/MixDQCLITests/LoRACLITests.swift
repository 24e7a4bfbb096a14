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
        // SGM numbering ends at input_blocks.8 in a 3-level UNet.
        try MixDQCLI.writeSafetensors([("lora_unet_input_blocks_9_1_proj_in.lora_down.weight", [1, 8], nil),
                                       ("lora_unet_input_blocks_9_1_proj_in.lora_up.weight", [8, 1], nil)], to: lora)
        let run = ["fp-infer", "--config", config.path, "--model", model.path, "--base-path", dir.appendingPathComponent("out").path,
                   "--num-imgs", "1", "--batch-size", "1", "--steps", "1", "--prompt", "a cat"]
        try MixDQCLI.fail(run + ["--lora", lora.path], mentioning: [lora.path, "input_blocks_9_1_proj_in"])
        try MixDQCLI.fail(run + ["--lora-scale", "2"], mentioning: ["--lora-scale needs --lora"])
        try MixDQCLI.fail(run + ["--lora", lora.path, "--lora-scale", "nan"], mentioning: ["--lora-scale", "finite"])
        let missing = dir.appendingPathComponent("nowhere.safetensors").path
        try MixDQCLI.fail(run + ["--lora", missing], mentioning: [missing])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/generated_images/0.png").path))
    }

    /// `quantize --lora`: the deployable UNet holds the fused weights (quantized layers quantized from
    /// them, an act-protected FP layer copied fused) and records the LoRA, which `infer --unet` then
    /// requires again; its images equal the in-memory int8 backend's with the same LoRA.
    func testQuantizedUNetWithAFusedLoRA() throws {
        let model = try MixDQCLI.defaultModel()
        let dir = try MixDQCLI.tempDir("lora-quantize")
        let config = try MixDQCLI.writeConfig(in: dir)
        let lora = dir.appendingPathComponent("real.safetensors")
        try Self.conv1LoRA(model: model, up: 0.3, to: lora)
        let ptq = dir.appendingPathComponent("ptq")
        if let failure = try MixDQCLI.calibrateAndQuantize(config: config, outdir: ptq, extra: ["--model", model.path, "--lora", lora.path]) {
            throw failure
        }
        // conv_in (the LoRA's module) act-protected: kept FP, so the quantized UNet copies its fused weight.
        let layers = try QuantFlowCLITests.layers(in: ptq.appendingPathComponent("ckpt.safetensors"))
        let weights = dir.appendingPathComponent("w.yaml"), acts = dir.appendingPathComponent("a.yaml"), protect = dir.appendingPathComponent("p.yaml")
        try QuantFlowCLITests.bitFile(layers, [:]).write(to: weights, atomically: true, encoding: .utf8)
        try QuantFlowCLITests.bitFile(layers.filter { $0 != "conv_in" }, [:]).write(to: acts, atomically: true, encoding: .utf8)
        try "- model.conv_in\n".write(to: protect, atomically: true, encoding: .utf8)
        let mp = ["--config-weight-mp", weights.path, "--config-act-mp", acts.path, "--act-protect", protect.path]
        let unet = dir.appendingPathComponent("unet-lora")
        let q = try MixDQCLI.succeed(["quantize", "--config", config.path, "--model", model.path, "--ckpt", ptq.path, "--lora", lora.path,
                                      "--out", unet.path] + mp)
        XCTAssertTrue(q.stderr.contains("LoRA fused into the quantized UNet: real.safetensors (fnv1a64 "), q.stderr)
        let common = ["--base-path", ptq.path, "--model", model.path, "--num-imgs", "2", "--batch-size", "1"]
        try MixDQCLI.succeed(["infer", "--unet", unet.path, "--lora", lora.path, "--image-folder", dir.appendingPathComponent("a").path] + common)
        try MixDQCLI.succeed(["infer", "--backend", "int8", "--lora", lora.path, "--image-folder", dir.appendingPathComponent("b").path] + common + mp)
        try MixDQCLI.succeed(["infer", "--backend", "int8", "--image-folder", dir.appendingPathComponent("c").path] + common + mp)
        for i in 0..<2 {
            let a = MixDQCLI.bytes(dir.appendingPathComponent("a/\(i).png")), b = MixDQCLI.bytes(dir.appendingPathComponent("b/\(i).png"))
            XCTAssertNotNil(a)
            XCTAssertEqual(a, b, "image \(i): the deployable UNet with its fused LoRA and the in-memory INT8 UNet with the LoRA differ")
            XCTAssertNotEqual(a, MixDQCLI.bytes(dir.appendingPathComponent("c/\(i).png")), "image \(i): the LoRA made no difference")
        }
        // The recorded LoRA must come back, at the same scale; an unfused quantized UNet takes none.
        try MixDQCLI.fail(["infer", "--unet", unet.path, "--image-folder", dir.appendingPathComponent("x").path] + common,
                          mentioning: [unet.path, "real.safetensors", "no --lora was given"])
        try MixDQCLI.fail(["infer", "--unet", unet.path, "--lora", lora.path, "--lora-scale", "0.5",
                           "--image-folder", dir.appendingPathComponent("y").path] + common, mentioning: ["scale 1.0", "scale 0.5"])
        let plain = dir.appendingPathComponent("unet-plain")
        try MixDQCLI.succeed(["quantize", "--config", config.path, "--model", model.path, "--ckpt", ptq.path, "--out", plain.path])
        try MixDQCLI.fail(["infer", "--unet", plain.path, "--lora", lora.path, "--image-folder", dir.appendingPathComponent("z").path] + common,
                          mentioning: [lora.path, plain.path, "quantize with --lora"])
    }
}
