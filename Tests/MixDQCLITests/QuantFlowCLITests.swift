import Foundation
import XCTest

/// The MixDQ flow through the CLI on the embedded default model (issue "MixDQ quantization" 7):
/// calib-data -> ptq -> infer, with a small calibration set (4 prompts, batch 2).
final class QuantFlowCLITests: XCTestCase {
    /// calib-data and one ptq run, made once for the tests of this class.
    struct Workspace {
        let dir: URL, config: URL, calib: URL, ptq: URL
        var checkpoint: URL { ptq.appendingPathComponent("ckpt.safetensors") }
    }

    static let workspaceResult: Result<Workspace, MixDQCLI.Failure> = {
        do {
            let dir = try MixDQCLI.tempDir("flow")
            let config = try MixDQCLI.writeConfig(in: dir)
            let calib = dir.appendingPathComponent("calib.h5")
            let ptq = dir.appendingPathComponent("ptq")
            if let failure = try MixDQCLI.calibrateAndQuantize(config: config, outdir: ptq) { return .failure(failure) }
            return .success(Workspace(dir: dir, config: config, calib: calib, ptq: ptq))
        } catch {
            return .failure(MixDQCLI.Failure(description: "\(error)"))
        }
    }()

    func workspace(file: StaticString = #filePath, line: UInt = #line) throws -> Workspace {
        try Self.sharedWorkspace(file: file, line: line)
    }

    /// The workspace for any test class (calib-data and ptq run once per test process).
    static func sharedWorkspace(file: StaticString = #filePath, line: UInt = #line) throws -> Workspace {
        try workspaceResult.value(file: file, line: line)
    }

    static let hdf5Magic = Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])

    func testCalibDataWritesHDF5AtConfigPath() throws {
        let w = try workspace()
        let data = try Data(contentsOf: w.calib)
        XCTAssertEqual(data.prefix(8), Self.hdf5Magic, "\(w.calib.path) is not an HDF5 file")
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.calib.path + ".partial"), "partial file left behind")
        let log = try String(contentsOf: w.calib.deletingPathExtension().appendingPathExtension("log"), encoding: .utf8)
        XCTAssertTrue(log.contains("1 step(s) x 4 row(s)"), log)
    }

    func testPTQIsDeterministicForASeed() throws {
        let w = try workspace()
        let second = w.dir.appendingPathComponent("ptq-again")
        try MixDQCLI.succeed(["ptq", "--config", w.config.path, "--outdir", second.path, "--seed", "42"])
        let a = try Data(contentsOf: w.checkpoint), b = try Data(contentsOf: second.appendingPathComponent("ckpt.safetensors"))
        XCTAssertGreaterThan(a.count, 1000)
        XCTAssertTrue(a == b, "two ptq runs with seed 42 gave different checkpoints (\(a.count) vs \(b.count) bytes)")
        // The config copy beside the checkpoint is what infer reads by default.
        XCTAssertTrue(FileManager.default.fileExists(atPath: w.ptq.appendingPathComponent("config.yaml").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: w.ptq.appendingPathComponent("run.log").path))
    }

    func testInferWithQuantizationOffEqualsFPInferExactly() throws {
        let w = try workspace()
        let fp = w.dir.appendingPathComponent("fp")
        try MixDQCLI.succeed(["fp-infer", "--config", w.config.path, "--base-path", fp.path, "--num-imgs", "2", "--batch-size", "2"])
        let off = w.dir.appendingPathComponent("off-images")
        try MixDQCLI.succeed(["infer", "--base-path", w.ptq.path, "--image-folder", off.path, "--num-imgs", "2", "--batch-size", "2",
                              "--skip-quant-weight", "--skip-quant-act"])
        let w8a8 = w.dir.appendingPathComponent("w8a8-images")
        try MixDQCLI.succeed(["infer", "--base-path", w.ptq.path, "--image-folder", w8a8.path, "--num-imgs", "2", "--batch-size", "2"])
        var quantDiffers = false
        for i in 0..<2 {
            let f = MixDQCLI.bytes(fp.appendingPathComponent("generated_images/\(i).png"))
            let o = MixDQCLI.bytes(off.appendingPathComponent("\(i).png"))
            let q = MixDQCLI.bytes(w8a8.appendingPathComponent("\(i).png"))
            XCTAssertNotNil(f, "fp-infer image \(i) missing")
            XCTAssertNotNil(o, "infer image \(i) missing")
            XCTAssertNotNil(q, "W8A8 image \(i) missing")
            XCTAssertTrue(f != nil && f == o, "image \(i): infer --skip-quant-weight --skip-quant-act differs from fp-infer")
            if q != f { quantDiffers = true }
        }
        XCTAssertTrue(quantDiffers, "W8A8 images are byte-identical to FP: quantization had no effect")
    }

    /// A text prompt file (one prompt per line) gives prompt i to image i: image 1 of a run over
    /// the file equals image 1 of a run with `--prompt` set to line 2 (same seed + 1).
    func testFPInferReadsOnePromptPerLine() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("fp-text-prompts")
        let prompts = dir.appendingPathComponent("prompts.txt")
        try "a large red circle on the left, gray background\r\na small blue star at the top right, white background\n"
            .write(to: prompts, atomically: true, encoding: .utf8)
        let fromFile = dir.appendingPathComponent("file"), single = dir.appendingPathComponent("single")
        try MixDQCLI.succeed(["fp-infer", "--config", w.config.path, "--captions", prompts.path, "--base-path", dir.path,
                              "--image-folder", fromFile.path, "--num-imgs", "2", "--batch-size", "2"])
        try MixDQCLI.succeed(["fp-infer", "--config", w.config.path, "--prompt", "a small blue star at the top right, white background",
                              "--base-path", dir.path, "--image-folder", single.path, "--num-imgs", "2", "--batch-size", "2"])
        let a = MixDQCLI.bytes(fromFile.appendingPathComponent("1.png")), b = MixDQCLI.bytes(single.appendingPathComponent("1.png"))
        XCTAssertNotNil(a)
        XCTAssertEqual(a, b, "image 1 of the prompt file differs from a run with its line as --prompt")
        // Same seed, other prompt: image 0 must differ (line 1 is not used for every image).
        XCTAssertNotEqual(MixDQCLI.bytes(fromFile.appendingPathComponent("0.png")), MixDQCLI.bytes(single.appendingPathComponent("0.png")),
                          "image 0 of the prompt file equals image 0 of the --prompt run")
        try MixDQCLI.fail(["fp-infer", "--config", w.config.path, "--captions", prompts.path, "--base-path", dir.path,
                           "--image-folder", fromFile.path, "--num-imgs", "3"], mentioning: [prompts.path, "holds 2 captions, --num-imgs asks for 3"])
    }

    /// The quantized layers of the default model, from the checkpoint's keys
    /// (`<layer>.weight_quantizer.delta_list`), sorted.
    static func layers(in checkpoint: URL) throws -> [String] {
        let data = try Data(contentsOf: checkpoint)
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any] else {
            throw MixDQCLI.Failure(description: "\(checkpoint.path): no JSON header")
        }
        let suffix = ".weight_quantizer.delta_list"
        return header.keys.filter { $0.hasSuffix(suffix) }.map { String($0.dropLast(suffix.count)) }.sorted()
    }

    /// A bit file naming every layer of `layers`: `bits` for those given, else `fallback`.
    static func bitFile(_ layers: [String], _ bits: [String: Int], fallback: Int = 8) -> String {
        layers.map { "model.\($0): \(bits[$0] ?? fallback)" }.joined(separator: "\n") + "\n"
    }

    func testInferWithMixedPrecisionFiles() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("mp")
        let weights = dir.appendingPathComponent("weight.yaml"), acts = dir.appendingPathComponent("act.yaml")
        let protect = dir.appendingPathComponent("protect.yaml")
        let layers = try Self.layers(in: w.checkpoint)
        XCTAssertGreaterThan(layers.count, 50)
        try Self.bitFile(layers, ["conv_in": 4, "conv_out": 2, "down_blocks.0.resnets.0.conv1": 8])
            .write(to: weights, atomically: true, encoding: .utf8)
        // The activation file leaves out the protected layer, as the original's files do.
        try Self.bitFile(layers.filter { $0 != "conv_in" }, ["conv_out": 4]).write(to: acts, atomically: true, encoding: .utf8)
        try "- model.conv_in\n".write(to: protect, atomically: true, encoding: .utf8)
        let images = dir.appendingPathComponent("images")
        let r = try MixDQCLI.succeed(["infer", "--base-path", w.ptq.path, "--image-folder", images.path, "--num-imgs", "2",
                                      "--batch-size", "2", "--config-weight-mp", weights.path, "--config-act-mp", acts.path,
                                      "--act-protect", protect.path])
        XCTAssertTrue(FileManager.default.fileExists(atPath: images.appendingPathComponent("1.png").path))
        XCTAssertTrue(r.stderr.contains("FP-protected 1"), r.stderr)
    }

    /// A bit file that leaves layers out is refused, listing the first few and the count
    /// (the original's files name every layer; activation files all but the protected ones).
    func testBitFilesMustNameEveryLayer() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("coverage")
        let layers = try Self.layers(in: w.checkpoint)
        let full = dir.appendingPathComponent("full.yaml"), partial = dir.appendingPathComponent("partial.yaml")
        let actNoConvIn = dir.appendingPathComponent("act.yaml"), protect = dir.appendingPathComponent("protect.yaml")
        try Self.bitFile(layers, [:]).write(to: full, atomically: true, encoding: .utf8)
        let missing = ["conv_out", "down_blocks.0.resnets.0.conv1"].sorted()
        try Self.bitFile(layers.filter { !missing.contains($0) }, [:]).write(to: partial, atomically: true, encoding: .utf8)
        try Self.bitFile(layers.filter { $0 != "conv_in" }, [:]).write(to: actNoConvIn, atomically: true, encoding: .utf8)
        try "- model.conv_in\n".write(to: protect, atomically: true, encoding: .utf8)
        let images = dir.appendingPathComponent("images")
        let base = ["infer", "--base-path", w.ptq.path, "--image-folder", images.path, "--num-imgs", "1", "--batch-size", "1"]

        try MixDQCLI.fail(base + ["--config-weight-mp", partial.path],
                          mentioning: [partial.path, "2 of the model's \(layers.count)"] + missing)
        try MixDQCLI.fail(base + ["--config-weight-mp", full.path, "--config-act-mp", partial.path],
                          mentioning: [partial.path, "2 of the model's"] + missing)
        // Without the protect list, conv_in needs an activation width too.
        try MixDQCLI.fail(base + ["--config-weight-mp", full.path, "--config-act-mp", actNoConvIn.path],
                          mentioning: [actNoConvIn.path, "1 of the model's", "conv_in"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0 == "images" }, [],
                       "no image is generated when a bit file is incomplete")
        try MixDQCLI.succeed(base + ["--config-weight-mp", full.path, "--config-act-mp", actNoConvIn.path, "--act-protect", protect.path])
        XCTAssertTrue(FileManager.default.fileExists(atPath: images.appendingPathComponent("0.png").path))
    }

    func testBadBitYAMLListsUnknownLayersAndUnsupportedBits() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("bad-bits")
        func file(_ name: String, _ text: String) throws -> URL {
            let url = dir.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            return url
        }
        let good = try file("good.yaml", "model.conv_in: 8\n")
        let unknown = try file("unknown.yaml", "model.conv_in: 8\nmodel.down_blocks.9.nope: 4\nmodel.bogus_layer: 8\n")
        let bits = try file("bits.yaml", "model.conv_in: 3\nmodel.conv_out: 6\nmodel.down_blocks.0.resnets.0.conv1: 4\n")
        let notInt = try file("notint.yaml", "model.conv_in: eight\n")
        let protect = try file("protect.yaml", "- model.conv_in\n- model.not_a_layer\n")
        let images = dir.appendingPathComponent("images")
        let base = ["infer", "--base-path", w.ptq.path, "--image-folder", images.path, "--num-imgs", "2", "--batch-size", "2"]

        let r1 = try MixDQCLI.fail(base + ["--config-weight-mp", unknown.path],
                                   mentioning: [unknown.path, "2 unknown layer", "bogus_layer", "down_blocks.9.nope"])
        XCTAssertFalse(r1.errorLine.contains("conv_in"), "known layers are not listed: \(r1.errorLine)")
        let r2 = try MixDQCLI.fail(base + ["--config-weight-mp", bits.path],
                                   mentioning: [bits.path, "conv_in: 3", "conv_out: 6", "2, 4, 8"])
        XCTAssertFalse(r2.errorLine.contains("conv1"), "supported widths are not listed: \(r2.errorLine)")
        try MixDQCLI.fail(base + ["--config-weight-mp", good.path, "--config-act-mp", bits.path],
                          mentioning: [bits.path, "conv_in: 3", "conv_out: 6"])
        try MixDQCLI.fail(base + ["--config-weight-mp", good.path, "--config-act-mp", unknown.path],
                          mentioning: [unknown.path, "bogus_layer", "down_blocks.9.nope"])
        try MixDQCLI.fail(base + ["--config-weight-mp", notInt.path], mentioning: [notInt.path, "conv_in"])
        try MixDQCLI.fail(base + ["--config-weight-mp", good.path, "--config-act-mp", good.path, "--act-protect", protect.path],
                          mentioning: ["not_a_layer"])
        try MixDQCLI.fail(base + ["--config-weight-mp", dir.appendingPathComponent("absent.yaml").path],
                          mentioning: [dir.appendingPathComponent("absent.yaml").path])
        XCTAssertFalse(FileManager.default.fileExists(atPath: images.appendingPathComponent("0.png").path),
                       "no image is generated when the bit files are bad")
    }

    func testCalibDataResumesAfterAnInterruptedRun() throws {
        let dir = try MixDQCLI.tempDir("resume")
        let config = try MixDQCLI.writeConfig(in: dir)
        let calib = dir.appendingPathComponent("calib.h5")
        let images = dir.appendingPathComponent("images")
        // Interrupt the second batch: image 2 cannot be written (a folder is in its place).
        try FileManager.default.createDirectory(at: images.appendingPathComponent("2.png"), withIntermediateDirectories: true)
        let log = dir.appendingPathComponent("calib.log")
        try MixDQCLI.fail(["calib-data", "--config", config.path, "--save-image-path", images.path], mentioning: ["2.png"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: calib.path), "no final file after an interrupted run")
        XCTAssertTrue(FileManager.default.fileExists(atPath: calib.path + ".partial"), "the partial file is kept for resuming")
        try FileManager.default.removeItem(at: images.appendingPathComponent("2.png"))
        // Mark the images of the finished batch: a resumed run must not redo it.
        let marker = Data("batch 0 done".utf8)
        try marker.write(to: images.appendingPathComponent("0.png"))
        try MixDQCLI.succeed(["calib-data", "--config", config.path, "--save-image-path", images.path])
        XCTAssertTrue(FileManager.default.fileExists(atPath: calib.path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: calib.path + ".partial"))
        XCTAssertEqual(MixDQCLI.bytes(images.appendingPathComponent("0.png")), marker, "batch 0 was recomputed on resume")
        XCTAssertTrue(FileManager.default.fileExists(atPath: images.appendingPathComponent("3.png").path))
        let text = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(text.contains("resuming"), text)
        XCTAssertTrue(text.contains("after 1 of 2 batch(es)"), text)
        // ptq accepts the resumed file.
        try MixDQCLI.succeed(["ptq", "--config", config.path, "--outdir", dir.appendingPathComponent("ptq").path])
    }
}
