import Foundation
import XCTest
import MixDQCompute
import MixDQIO

/// Issue 7's bad-input probe through the binary, one case per class on the model side: each exits
/// non-zero with an `Error:` line naming the file and the key or tensor, and writes no output.
final class ModelInputCLITests: XCTestCase {
    var unetFixture: URL { MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny") }

    func testEmptyBatchesNameInputFileAndTensor() throws {
        let dir = try MixDQCLI.tempDir("batch0")
        let input = dir.appendingPathComponent("b0.safetensors")
        try MixDQCLI.writeSafetensors([("sample", [0, 4, 16, 16], nil), ("timestep", [1], [999]),
                                       ("encoder_hidden_states", [0, 77, 80], nil), ("text_embeds", [0, 40], nil),
                                       ("time_ids", [0, 6], nil)], to: input)
        let out = dir.appendingPathComponent("out.safetensors")
        try MixDQCLI.fail(["forward", "unet", "--model", unetFixture.path, "--input", input.path, "--output", out.path],
                          mentioning: [input.path, "'sample'", "[0, 4, 16, 16]"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))

        // The other components: an empty id batch, a latent batch of 0.
        let ids = dir.appendingPathComponent("ids0.safetensors")
        try MixDQCLI.writeSafetensors([("input_ids", [0, 77], nil)], to: ids)
        try MixDQCLI.fail(["forward", "text-encoder", "--model", MixDQCLI.fixtures.appendingPathComponent("clip_tiny").path,
                           "--input", ids.path, "--output", out.path], mentioning: [ids.path, "input_ids", "empty"])
        let latents = dir.appendingPathComponent("latents0.safetensors")
        try MixDQCLI.writeSafetensors([("latents", [0, 4, 8, 8], nil)], to: latents)
        try MixDQCLI.fail(["forward", "vae-decoder", "--model", MixDQCLI.fixtures.appendingPathComponent("vae_tiny").path,
                           "--input", latents.path, "--output", out.path], mentioning: [latents.path, "'latents'", "[0, 4, 8, 8]"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    func testOutOfRangeUNetConfigNamesFileAndKey() throws {
        let dir = try MixDQCLI.tempDir("unet-bounds")
        for (key, value) in [("norm_num_groups", -32 as Any), ("freq_shift", Int.min as Any), ("num_attention_heads", [0] as Any)] {
            let model = dir.appendingPathComponent(key)
            try MixDQCLI.copy(unetFixture.appendingPathComponent("unet"), to: model.appendingPathComponent("unet"))
            let config = model.appendingPathComponent("unet/config.json")
            try MixDQCLI.editJSON(config) { $0[key] = value }
            let out = dir.appendingPathComponent("\(key).safetensors")
            try MixDQCLI.fail(["forward", "unet", "--model", model.path, "--input",
                               unetFixture.appendingPathComponent("io_b1.safetensors").path, "--output", out.path],
                              mentioning: [config.path, key])
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        }
    }

    /// `ptq` on a model with an Inf weight used to trap; the UNet load names the tensor and the file.
    func testPTQWithInfWeightNamesTensorAndFile() throws {
        let dir = try MixDQCLI.tempDir("ptq-inf")
        let model = dir.appendingPathComponent("model")
        try MixDQCLI.copy(try MixDQCLI.defaultModel(), to: model)
        let weights = model.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        let key = "down_blocks.1.attentions.0.proj_in.weight"
        let file = try SafetensorsFile(weights)
        var tensors: [(String, Tensor)] = []
        for k in file.keys {
            let t = try file.floatTensor(k, copy: true)
            if k == key { t.data[7] = .infinity }
            tensors.append((k, t))
        }
        try SafetensorsWriter.write(tensors, metadata: file.metadata, to: weights)
        let outdir = dir.appendingPathComponent("ptq")
        try MixDQCLI.fail(["ptq", "--config", try MixDQCLI.writeConfig(in: dir).path, "--model", model.path, "--outdir", outdir.path],
                          mentioning: [weights.path, "'\(key)'", "non-finite"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: outdir.appendingPathComponent("ckpt.safetensors").path))
    }

    func testSchedulerAndTokenizerFilesThatCannotWorkAreNamed() throws {
        let dir = try MixDQCLI.tempDir("sched-tok")
        let config = try MixDQCLI.writeConfig(in: dir)
        let cases: [(String, String, (URL) throws -> Void, [String])] = [
            ("beta-end", "scheduler/scheduler_config.json", { try MixDQCLI.editJSON($0) { $0["beta_end"] = 2 } }, ["beta_end"]),
            ("timesteps", "scheduler/scheduler_config.json", { try MixDQCLI.editJSON($0) { $0["num_train_timesteps"] = -5 } },
             ["num_train_timesteps"]),
            ("vocab", "tokenizer/vocab.json", { try Data("{}".utf8).write(to: $0) }, ["empty"]),
        ]
        for (label, path, damage, mentions) in cases {
            let model = dir.appendingPathComponent("model-\(label)")
            try MixDQCLI.copy(try MixDQCLI.defaultModel(), to: model)
            let damaged = model.appendingPathComponent(path)
            try damage(damaged)
            let out = dir.appendingPathComponent("out-\(label)")
            try MixDQCLI.fail(["fp-infer", "--config", config.path, "--model", model.path, "--base-path", out.path,
                               "--num-imgs", "1", "--batch-size", "1"], mentioning: [damaged.path] + mentions)
            let images = (try? FileManager.default.subpathsOfDirectory(atPath: out.path)) ?? []
            XCTAssertFalse(images.contains { $0.hasSuffix(".png") }, "\(label): no image written: \(images)")
        }
    }
}
