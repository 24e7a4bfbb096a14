import Foundation
import XCTest

/// Bad input through the CLI: each case exits non-zero with an `Error:` line naming the path (and
/// the key or tensor) at fault. Issues "Foundation" 1 and 8, "Text-to-image" 11.
final class BadInputCLITests: XCTestCase {
    // MARK: forward unet

    var unetFixture: URL { MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny") }

    /// The SDXL tiny fixture: in 4, cross 80, text_embeds 40 (+ 6 time ids).
    func unetInputs(sample: [Int] = [1, 4, 16, 16], context: [Int] = [1, 77, 80], text: [Int]? = [1, 40],
                    ids: [Int]? = [1, 6]) -> [(String, [Int], [Float]?)] {
        var t: [(String, [Int], [Float]?)] = [("sample", sample, nil), ("timestep", [1], [999]),
                                               ("encoder_hidden_states", context, nil)]
        if let text { t.append(("text_embeds", text, nil)) }
        if let ids { t.append(("time_ids", ids, [64, 64, 0, 0, 64, 64] + [Float](repeating: 0, count: ids.reduce(1, *) - 6))) }
        return t
    }

    func testForwardUNetWrongShapesNameTheTensor() throws {
        let dir = try MixDQCLI.tempDir("fwd-shape")
        let cases: [(String, [(String, [Int], [Float]?)], [String])] = [
            ("sample", unetInputs(sample: [1, 3, 16, 16]), ["'sample'", "[1, 3, 16, 16]"]),
            ("sample-rank", unetInputs(sample: [4, 16, 16]), ["'sample'"]),
            ("context", unetInputs(context: [1, 77, 64]), ["'encoder_hidden_states'", "[1, 77, 64]"]),
            ("context-batch", unetInputs(context: [2, 77, 80]), ["'encoder_hidden_states'"]),
            ("text", unetInputs(text: [1, 41]), ["'text_embeds'", "[1, 41]"]),
            ("ids", unetInputs(ids: [1, 7]), ["'time_ids'", "[1, 7]"]),
        ]
        for (name, tensors, mentions) in cases {
            let input = dir.appendingPathComponent("\(name).safetensors")
            try MixDQCLI.writeSafetensors(tensors, to: input)
            let out = dir.appendingPathComponent("\(name)-out.safetensors")
            try MixDQCLI.fail(["forward", "unet", "--model", unetFixture.path, "--input", input.path, "--output", out.path],
                              mentioning: mentions)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(name): no output on error")
        }
        // A missing tensor is named with the file.
        let missing = dir.appendingPathComponent("missing.safetensors")
        try MixDQCLI.writeSafetensors(unetInputs(ids: nil), to: missing)
        try MixDQCLI.fail(["forward", "unet", "--model", unetFixture.path, "--input", missing.path,
                           "--output", dir.appendingPathComponent("o.safetensors").path],
                          mentioning: [missing.path, "'time_ids'"])
        // The right shapes pass (the same command works).
        let good = dir.appendingPathComponent("good.safetensors")
        try MixDQCLI.writeSafetensors(unetInputs(), to: good)
        try MixDQCLI.succeed(["forward", "unet", "--model", unetFixture.path, "--input", good.path,
                              "--output", dir.appendingPathComponent("good-out.safetensors").path])
    }

    /// A copy of the tiny UNet fixture with an edited config.json, as a pipeline folder `<dir>/unet`.
    func unetWithConfig(_ label: String, _ edit: (inout [String: Any]) -> Void) throws -> (model: URL, config: URL) {
        let dir = try MixDQCLI.tempDir(label)
        try MixDQCLI.copy(unetFixture.appendingPathComponent("unet"), to: dir.appendingPathComponent("unet"))
        let config = dir.appendingPathComponent("unet/config.json")
        try MixDQCLI.editJSON(config, edit)
        return (dir, config)
    }

    func testUNetConfigMissingKeyOrUnknownBlockNamesFileAndKey() throws {
        let io = unetFixture.appendingPathComponent("io_b1.safetensors").path
        let cases: [(String, (inout [String: Any]) -> Void, [String])] = [
            ("missing-key", { $0.removeValue(forKey: "in_channels") }, ["in_channels", "missing"]),
            ("missing-block-types", { $0.removeValue(forKey: "down_block_types") }, ["down_block_types"]),
            ("unknown-down-block", { c in
                var t = c["down_block_types"] as! [String]; t[1] = "AttnDownBlock2D"; c["down_block_types"] = t
            }, ["down_block_types", "AttnDownBlock2D"]),
            ("unknown-up-block", { c in
                var t = c["up_block_types"] as! [String]; t[0] = "SimpleCrossAttnUpBlock2D"; c["up_block_types"] = t
            }, ["up_block_types", "SimpleCrossAttnUpBlock2D"]),
            ("unknown-mid-block", { $0["mid_block_type"] = "UNetMidBlock2DSimpleCrossAttn" },
             ["mid_block_type", "UNetMidBlock2DSimpleCrossAttn"]),
            ("wrong-type", { $0["in_channels"] = "four" }, ["in_channels"]),
        ]
        for (label, edit, mentions) in cases {
            let (model, config) = try unetWithConfig(label, edit)
            try MixDQCLI.fail(["forward", "unet", "--model", model.path, "--input", io,
                               "--output", model.appendingPathComponent("o.safetensors").path],
                              mentioning: [config.path] + mentions)
            // The same check when the config is read on its own (bench with random weights).
            try MixDQCLI.fail(["bench", "unet", "--random-weights", "--model-config", config.path, "--height", "64", "--width", "64",
                               "--runs", "1", "--warmup", "0"],
                              mentioning: [config.path] + mentions)
        }
    }

    func testOtherComponentConfigsNameFileAndKey() throws {
        let model = try MixDQCLI.defaultModel()
        let dir = try MixDQCLI.tempDir("component-config")
        let base = try MixDQCLI.writeConfig(in: dir)
        for (component, key) in [("text_encoder", "hidden_size"), ("text_encoder_2", "projection_dim"), ("vae", "latent_channels")] {
            let broken = dir.appendingPathComponent("model-\(component)")
            try MixDQCLI.copy(model, to: broken)
            let config = broken.appendingPathComponent(component).appendingPathComponent("config.json")
            try MixDQCLI.editJSON(config) { $0.removeValue(forKey: key) }
            try MixDQCLI.fail(["fp-infer", "--config", base.path, "--model", broken.path, "--base-path",
                               dir.appendingPathComponent("out-\(component)").path, "--num-imgs", "2", "--batch-size", "2"],
                              mentioning: [config.path, key])
        }
    }

    // MARK: Model folders

    func testMissingComponentFolderOrFileNamesThePath() throws {
        let model = try MixDQCLI.defaultModel()
        let dir = try MixDQCLI.tempDir("missing")
        let config = try MixDQCLI.writeConfig(in: dir)
        func fpInfer(_ modelPath: URL, _ label: String) -> [String] {
            ["fp-infer", "--config", config.path, "--model", modelPath.path, "--base-path", dir.appendingPathComponent("out-\(label)").path,
             "--num-imgs", "2", "--batch-size", "2"]
        }
        // No model at all / an empty folder.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try MixDQCLI.fail(fpInfer(empty, "empty"), mentioning: [empty.path, "unet"])
        try MixDQCLI.fail(fpInfer(dir.appendingPathComponent("does-not-exist"), "none"),
                          mentioning: [dir.appendingPathComponent("does-not-exist").path])

        // Each component folder removed in turn.
        for component in ["unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"] {
            let broken = dir.appendingPathComponent("no-\(component)")
            try MixDQCLI.copy(model, to: broken)
            try FileManager.default.removeItem(at: broken.appendingPathComponent(component))
            try MixDQCLI.fail(fpInfer(broken, component), mentioning: [broken.path, component])
        }

        // Files removed or damaged.
        let files: [(String, String, [String])] = [
            ("unet", "diffusion_pytorch_model.safetensors", []),
            ("vae", "diffusion_pytorch_model.safetensors", []),
            ("text_encoder", "model.safetensors", []),
            ("scheduler", "scheduler_config.json", []),
        ]
        for (component, file, extra) in files {
            let broken = dir.appendingPathComponent("no-\(component)-file")
            try MixDQCLI.copy(model, to: broken)
            try FileManager.default.removeItem(at: broken.appendingPathComponent(component).appendingPathComponent(file))
            try MixDQCLI.fail(fpInfer(broken, "\(component)-file"), mentioning: [broken.appendingPathComponent(component).path] + extra)
        }
        let truncated = dir.appendingPathComponent("truncated-unet")
        try MixDQCLI.copy(model, to: truncated)
        let weights = truncated.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        try Data(try Data(contentsOf: weights).prefix(4000)).write(to: weights)
        try MixDQCLI.fail(fpInfer(truncated, "truncated"), mentioning: [weights.path])
    }

    func testTokenizerFilesThatDoNotParseNameTheFile() throws {
        let model = try MixDQCLI.defaultModel()
        let dir = try MixDQCLI.tempDir("tokenizer")
        let config = try MixDQCLI.writeConfig(in: dir)
        let cases: [(String, String, String)] = [
            ("tokenizer", "vocab.json", "not json {"),
            ("tokenizer", "vocab.json", "[1, 2, 3]"),
            ("tokenizer_2", "tokenizer_config.json", "{ broken"),
            ("tokenizer", "merges.txt", "#version: 0.2\na b c\n"),
            ("tokenizer_2", "special_tokens_map.json", "garbage"),
        ]
        for (i, (component, file, content)) in cases.enumerated() {
            let broken = dir.appendingPathComponent("model-\(i)")
            try MixDQCLI.copy(model, to: broken)
            let url = broken.appendingPathComponent(component).appendingPathComponent(file)
            try content.write(to: url, atomically: true, encoding: .utf8)
            try MixDQCLI.fail(["fp-infer", "--config", config.path, "--model", broken.path,
                               "--base-path", dir.appendingPathComponent("out-\(i)").path, "--num-imgs", "2", "--batch-size", "2"],
                              mentioning: [url.path])
        }
        let missing = dir.appendingPathComponent("model-missing-vocab")
        try MixDQCLI.copy(model, to: missing)
        let vocab = missing.appendingPathComponent("tokenizer/vocab.json")
        try FileManager.default.removeItem(at: vocab)
        try MixDQCLI.fail(["fp-infer", "--config", config.path, "--model", missing.path,
                           "--base-path", dir.appendingPathComponent("out-missing").path, "--num-imgs", "2", "--batch-size", "2"],
                          mentioning: [vocab.path])
    }

    // MARK: Captions, configs, output folders

    func testCaptionsThatAreNotCOCONameTheFile() throws {
        let dir = try MixDQCLI.tempDir("captions")
        let config = try MixDQCLI.writeConfig(in: dir)
        let coco = MixDQCLI.fixtures.appendingPathComponent("coco")
        let notCOCO = dir.appendingPathComponent("list.json")
        try #"["a cat", "a dog"]"#.write(to: notCOCO, atomically: true, encoding: .utf8)
        for bad in [coco.appendingPathComponent("no_annotations.json"), coco.appendingPathComponent("not_json.json"),
                    coco.appendingPathComponent("captions_missing_caption.json"), notCOCO, dir.appendingPathComponent("absent.json")] {
            try MixDQCLI.fail(["fp-infer", "--config", config.path, "--captions", bad.path,
                               "--base-path", dir.appendingPathComponent("out").path, "--num-imgs", "2"],
                              mentioning: [bad.path])
            // calib-data takes its captions from the config.
            let calibConfig = try MixDQCLI.writeConfig(in: dir, captions: bad, name: "calib.yaml")
            try MixDQCLI.fail(["calib-data", "--config", calibConfig.path], mentioning: [bad.path])
        }
        // Too few captions for the request: named too.
        let one = dir.appendingPathComponent("one.json")
        try #"{"annotations": [{"image_id": 1, "id": 1, "caption": "a cat"}]}"#.write(to: one, atomically: true, encoding: .utf8)
        try MixDQCLI.fail(["fp-infer", "--config", config.path, "--captions", one.path,
                           "--base-path", dir.appendingPathComponent("out").path, "--num-imgs", "2"],
                          mentioning: [one.path, "1 caption"])
    }

    func testConfigWithUnknownOrMissingKeyNamesFileAndKey() throws {
        let dir = try MixDQCLI.tempDir("config")
        let good = try String(contentsOf: try MixDQCLI.writeConfig(in: dir), encoding: .utf8)
        let cases: [(String, String, [String])] = [
            ("unknown", good.replacingOccurrences(of: "n_steps:", with: "n_stepz:"), ["calib_data.n_stepz"]),
            ("bits", good.replacingOccurrences(of: "n_bits: 8", with: "n_bits: eight"), ["n_bits"]),
        ]
        for (label, text, mentions) in cases {
            XCTAssertNotEqual(text, good, "\(label): the edit did not apply")
            let url = dir.appendingPathComponent("\(label).yaml")
            try text.write(to: url, atomically: true, encoding: .utf8)
            try MixDQCLI.fail(["fp-infer", "--config", url.path, "--base-path", dir.appendingPathComponent("out").path, "--num-imgs", "2"],
                              mentioning: [url.path] + mentions)
        }
        try MixDQCLI.fail(["ptq", "--config", dir.appendingPathComponent("absent.yaml").path, "--outdir", dir.appendingPathComponent("ptq").path],
                          mentioning: [dir.appendingPathComponent("absent.yaml").path])
    }

    func testUnwritableOutputFolderIsNamed() throws {
        let dir = try MixDQCLI.tempDir("unwritable")
        let config = try MixDQCLI.writeConfig(in: dir)
        // A regular file where a folder is needed: unwritable even for root.
        let blocker = dir.appendingPathComponent("a-file")
        try "x".write(to: blocker, atomically: true, encoding: .utf8)
        let under = blocker.appendingPathComponent("out")
        try MixDQCLI.fail(["fp-infer", "--config", config.path, "--base-path", under.path, "--num-imgs", "2"],
                          mentioning: [under.path])
        try MixDQCLI.fail(["fp-infer", "--config", config.path, "--base-path", dir.appendingPathComponent("ok").path,
                           "--image-folder", under.path, "--num-imgs", "2", "--batch-size", "2"],
                          mentioning: [under.path])
        try MixDQCLI.fail(["ptq", "--config", config.path, "--outdir", under.path], mentioning: [under.path])
        try MixDQCLI.fail(["infer", "--config", config.path, "--base-path", under.path, "--num-imgs", "2"], mentioning: [under.path])
        let calibConfig = try MixDQCLI.writeConfig(in: dir, calibPath: under.appendingPathComponent("calib.h5"), name: "calib.yaml")
        try MixDQCLI.fail(["calib-data", "--config", calibConfig.path], mentioning: [under.path])
        try MixDQCLI.fail(["default-model", "--output", under.appendingPathComponent("model").path], mentioning: [under.path])
    }

    func testMissingCheckpointOrCalibrationFileIsNamed() throws {
        let dir = try MixDQCLI.tempDir("missing-inputs")
        let config = try MixDQCLI.writeConfig(in: dir)
        // infer without a ptq run there: the checkpoint path is named.
        try MixDQCLI.fail(["infer", "--config", config.path, "--base-path", dir.appendingPathComponent("no-ptq").path, "--num-imgs", "2"],
                          mentioning: [dir.appendingPathComponent("no-ptq/ckpt.safetensors").path])
        // ptq without calibration data: calib_data.path is named.
        try MixDQCLI.fail(["ptq", "--config", config.path, "--outdir", dir.appendingPathComponent("ptq").path],
                          mentioning: [dir.appendingPathComponent("calib.h5").path])
    }

    func testOptionValidation() throws {
        let dir = try MixDQCLI.tempDir("validation")
        let base = dir.appendingPathComponent("b").path
        let cases: [([String], String)] = [
            (["fp-infer", "--base-path", base, "--shard", "3/3"], "--shard"),
            (["fp-infer", "--base-path", base, "--num-imgs", "0"], "--num-imgs"),
            (["fp-infer", "--base-path", base, "--height", "100"], "--height"),
            (["infer", "--base-path", base, "--config-act-mp", "a.yaml"], "--config-weight-mp"),
            (["infer", "--base-path", base, "--act-protect", "p.yaml"], "--config-act-mp"),
            (["fp-infer", "--base-path", base, "--precision", "fp8"], "fp8"),
        ]
        for (args, mention) in cases { try MixDQCLI.fail(args, mentioning: [mention]) }
    }
}
