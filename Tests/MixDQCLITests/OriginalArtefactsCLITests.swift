import Foundation
import MixDQIO
import XCTest

/// Files users of the original MixDQ bring (issue 12 item 5), through the CLI, on the random tiny
/// model. Fixtures (Tests/Fixtures/original, scripts/reference/make_original_artefact_fixtures.py):
/// our own ptq checkpoint and calibration file of that model (`ptq_source/`, `calib_source.h5`),
/// the same written in the original's layouts with torch (`ckpt.pth`, `calib.pt`), and what
/// scripts/convert/from_original.py made of those (`converted/`, `calib_converted.h5`).
final class OriginalArtefactsCLITests: XCTestCase {
    static let fixtures = MixDQCLI.fixtures.appendingPathComponent("original")
    let prompt = "a large red circle on the left and a small blue star at the top right, gray background"

    /// A ptq-style folder (ckpt.safetensors + config.yaml) holding `checkpoint`.
    func ptqFolder(_ checkpoint: URL, label: String) throws -> URL {
        let dir = try MixDQCLI.tempDir(label)
        try FileManager.default.copyItem(at: checkpoint, to: dir.appendingPathComponent("ckpt.safetensors"))
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("config.yaml"), to: dir.appendingPathComponent("config.yaml"))
        return dir
    }

    func images(in folder: URL, count: Int) -> [Data?] { (0..<count).map { MixDQCLI.bytes(folder.appendingPathComponent("\($0).png")) } }

    /// Every tensor of the converted checkpoint equals the one it was made from (max abs diff 0),
    /// and `infer` draws the same images from both, byte for byte.
    func testConvertedCheckpointInfersLikeTheSource() throws {
        let source = Self.fixtures.appendingPathComponent("ptq_source/ckpt.safetensors")
        let converted = Self.fixtures.appendingPathComponent("converted/ckpt.safetensors")
        let a = try SafetensorsFile(source), b = try SafetensorsFile(converted)
        XCTAssertEqual(a.keys, b.keys)
        XCTAssertGreaterThan(a.keys.count, 100)
        var worst: Float = 0
        for key in a.keys {
            let x = try a.floatTensor(key), y = try b.floatTensor(key)
            XCTAssertEqual(x.shape, y.shape, key)
            for (u, v) in zip(x.scalars, y.scalars) { worst = max(worst, abs(u - v)) }
        }
        print("converted vs source checkpoint: \(a.keys.count) tensors, max abs diff \(worst)")
        XCTAssertEqual(worst, 0)
        XCTAssertEqual(b.metadata["bit_widths"], "8")
        XCTAssertEqual(b.metadata["ema_compat_repeat"], "true")

        var results: [[Data?]] = []
        for (label, ckpt) in [("source", source), ("converted", converted)] {
            let base = try ptqFolder(ckpt, label: label)
            let out = base.appendingPathComponent("images")
            try MixDQCLI.succeed(["infer", "--base-path", base.path, "--image-folder", out.path, "--prompt", prompt,
                                  "--num-imgs", "2", "--batch-size", "2"])
            results.append(images(in: out, count: 2))
        }
        XCTAssertTrue(results[0].allSatisfy { $0 != nil }, "infer wrote no images")
        XCTAssertEqual(results[0], results[1], "infer with the converted checkpoint differs from the source checkpoint")
    }

    /// The converted calibration file holds the source's datasets and prompts exactly, and ptq on it
    /// calibrates the same parameters as on the source file.
    func testConvertedCalibrationGivesTheSamePTQ() throws {
        let source = Self.fixtures.appendingPathComponent("calib_source.h5")
        let converted = Self.fixtures.appendingPathComponent("calib_converted.h5")
        let f = try HDF5File.open(source), g = try HDF5File.open(converted)
        defer { try? f.close(); try? g.close() }
        let names = try f.datasetNames()
        XCTAssertEqual(names, try g.datasetNames())
        XCTAssertTrue(names.contains("added_cond_kwargs/time_ids") && names.contains("outputs"), "\(names)")
        for name in names where name != "prompts" {
            let x = try f.readTensor(name), y = try g.readTensor(name)
            XCTAssertEqual(x.shape, y.shape, name)
            XCTAssertEqual(x.scalars, y.scalars, name)
        }
        XCTAssertEqual(try f.readStrings("prompts"), try g.readStrings("prompts"))

        var checkpoints: [SafetensorsFile] = []
        for (label, calib) in [("calib-source", source), ("calib-converted", converted)] {
            let dir = try MixDQCLI.tempDir(label)
            try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("config.yaml"), to: dir.appendingPathComponent("config.yaml"))
            try FileManager.default.copyItem(at: calib, to: dir.appendingPathComponent("calib.h5"))
            let out = dir.appendingPathComponent("ptq")
            try MixDQCLI.succeed(["ptq", "--config", dir.appendingPathComponent("config.yaml").path, "--outdir", out.path, "--seed", "42"])
            checkpoints.append(try SafetensorsFile(out.appendingPathComponent("ckpt.safetensors")))
        }
        XCTAssertEqual(checkpoints[0].keys, checkpoints[1].keys)
        for key in checkpoints[0].keys {
            XCTAssertEqual(try checkpoints[0].floatTensor(key).scalars, try checkpoints[1].floatTensor(key).scalars, key)
        }
    }

    /// `infer --act-protect list.pt` equals `--act-protect list.yaml` image for image.
    func testActProtectTorchListEqualsYAML() throws {
        let base = try ptqFolder(Self.fixtures.appendingPathComponent("ptq_source/ckpt.safetensors"), label: "protect")
        let layers = try QuantFlowCLITests.layers(in: base.appendingPathComponent("ckpt.safetensors"))
        let protected = try BitConfigNames.read(Self.fixtures.appendingPathComponent("act_protect_tiny.yaml"))
        XCTAssertEqual(protected.count, 5)
        let weights = base.appendingPathComponent("weight.yaml"), acts = base.appendingPathComponent("act.yaml")
        try QuantFlowCLITests.bitFile(layers, [:]).write(to: weights, atomically: true, encoding: .utf8)
        try QuantFlowCLITests.bitFile(layers.filter { !protected.contains($0) }, [:]).write(to: acts, atomically: true, encoding: .utf8)
        var results: [[Data?]] = []
        for list in ["act_protect_tiny.pt", "act_protect_tiny.yaml"] {
            let out = base.appendingPathComponent("images-\(list)")
            let r = try MixDQCLI.succeed(["infer", "--base-path", base.path, "--image-folder", out.path, "--prompt", prompt,
                                          "--num-imgs", "2", "--batch-size", "2", "--config-weight-mp", weights.path,
                                          "--config-act-mp", acts.path, "--act-protect", Self.fixtures.appendingPathComponent(list).path])
            XCTAssertTrue(r.stderr.contains("FP-protected 5"), r.stderr)
            results.append(images(in: out, count: 2))
        }
        XCTAssertTrue(results[0].allSatisfy { $0 != nil }, "infer wrote no images")
        XCTAssertEqual(results[0], results[1], "--act-protect .pt and .yaml gave different images")

        // A .pt that is not a list of strings stops infer before any image, naming the file.
        let dict = Self.fixtures.appendingPathComponent("hostile/dict.pt")
        try MixDQCLI.fail(["infer", "--base-path", base.path, "--image-folder", base.appendingPathComponent("bad").path, "--prompt", prompt,
                           "--num-imgs", "1", "--config-weight-mp", weights.path, "--config-act-mp", acts.path, "--act-protect", dict.path],
                          mentioning: [dict.path, "holds a dict"])
        // The original's own list names layers the tiny model lacks: they are listed.
        let allActs = base.appendingPathComponent("act-all.yaml")
        try QuantFlowCLITests.bitFile(layers, [:]).write(to: allActs, atomically: true, encoding: .utf8)
        try MixDQCLI.fail(["infer", "--base-path", base.path, "--image-folder", base.appendingPathComponent("bad").path, "--prompt", prompt,
                           "--num-imgs", "1", "--config-weight-mp", weights.path, "--config-act-mp", allActs.path,
                           "--act-protect", Self.fixtures.appendingPathComponent("act_sensitivie_a8_1%.pt").path],
                          mentioning: ["transformer_blocks.8.ff.net.2"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: base.appendingPathComponent("bad/0.png").path))
    }
}

/// The layer names of a YAML list fixture, `model.` stripped (read here without the code under test).
enum BitConfigNames {
    static func read(_ url: URL) throws -> [String] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            String($0.dropFirst("- model.".count))
        }
    }
}
