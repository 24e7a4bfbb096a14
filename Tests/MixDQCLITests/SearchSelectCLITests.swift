import Foundation
import XCTest
import MixDQIO
import MixDQPipeline

/// `mixdq search select` on the embedded default model (issue 9 items 4 and 6), with the ptq
/// checkpoint of `QuantFlowCLITests`: uniform candidates whose order is known (8 bits beat 2), every
/// reported number recomputed here from the written images and the model's parameter counts,
/// resumption, the equality of its images with `infer`'s, and each class of bad input.
final class SearchSelectCLITests: XCTestCase {
    struct Setup {
        let dir: URL, candidates: URL, layers: [String], params: [String: Double]
        let workspace: QuantFlowCLITests.Workspace
    }

    /// Uniform weight candidates at `bits` (every layer) in a fresh folder, and the model's parameter counts.
    func setup(_ label: String, weightBits: [Int] = [2, 8]) throws -> Setup {
        let w: QuantFlowCLITests.Workspace
        switch QuantFlowCLITests.workspaceResult {
        case let .success(found): w = found
        case let .failure(error):
            XCTFail(error.description)
            throw error
        }
        let dir = try MixDQCLI.tempDir(label)
        let candidates = dir.appendingPathComponent("candidates")
        try FileManager.default.createDirectory(at: candidates, withIntermediateDirectories: true)
        let layers = try QuantFlowCLITests.layers(in: w.checkpoint)
        for b in weightBits {
            try QuantFlowCLITests.bitFile(layers, [:], fallback: b)
                .write(to: candidates.appendingPathComponent("weight_\(b).00_1.00.yaml"), atomically: true, encoding: .utf8)
        }
        let paramsURL = dir.appendingPathComponent("params.yaml")
        try MixDQCLI.succeed(["search", "ratios", "--type", "params", "--out", paramsURL.path])
        var params: [String: Double] = [:]
        for line in try String(contentsOf: paramsURL, encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: ":")
            params[String(parts[0].dropFirst("model.".count))] = Double(parts[1].trimmingCharacters(in: .whitespaces))
        }
        return Setup(dir: dir, candidates: candidates, layers: layers, params: params, workspace: w)
    }

    func csv(_ url: URL) throws -> [[String]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    /// PSNR from its definition, in Double over the 8-bit RGB values.
    func psnr(_ a: RGBImage, _ b: RGBImage) -> Double {
        let sum = zip(a.pixels, b.pixels).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) }
        return 10 * log10(255 * 255 / (sum / Double(a.pixels.count)))
    }

    func testWeightSelectionRanksAndEveryNumberMatchesTheImages() throws {
        let s = try setup("select-weight")
        let out = s.dir.appendingPathComponent("final_weight_mp.yaml")
        let work = s.dir.appendingPathComponent("select_weight")
        let args = ["search", "select", "--type", "weight", "--dir", s.candidates.path, "--prompts", "2", "--ckpt", s.workspace.ptq.path,
                    "--out", out.path]
        let r = try MixDQCLI.succeed(args)
        XCTAssertTrue(r.stdout.contains("chosen: weight_8.00_1.00"), r.stdout)
        XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: s.candidates.appendingPathComponent("weight_8.00_1.00.yaml")))

        let rows = try csv(work.appendingPathComponent("report.csv"))
        XCTAssertEqual(rows.first, ["rank", "candidate", "mean_bits", "model_bytes", "pareto_optimal", "mean_ssim", "mean_psnr",
                                    "ssim_0", "ssim_1", "psnr_0", "psnr_1"])
        XCTAssertEqual(rows.count, 3)
        XCTAssertEqual(rows.dropFirst().map { $0[0] + " " + $0[1] }, ["1 weight_8.00_1.00", "2 weight_2.00_1.00"])
        let total = s.layers.reduce(0.0) { $0 + (s.params[$1] ?? .nan) }
        for row in rows.dropFirst() {
            let bits = row[1] == "weight_8.00_1.00" ? 8 : 2
            XCTAssertEqual(row[2], String(format: "%.4f", Double(bits)))
            XCTAssertEqual(row[3], String(format: "%.0f", total * Double(bits) / 8), "packed bytes: every parameter at \(bits) bits")
            XCTAssertEqual(row[4], "yes", "fewer bits or a better image: both Pareto-optimal")
            var ssims: [Double] = [], psnrs: [Double] = []
            for i in 0..<2 {
                let fp = try RGBImage.readPNG(work.appendingPathComponent("images/fp/\(i).png"))
                let q = try RGBImage.readPNG(work.appendingPathComponent("images/\(row[1])/\(i).png"))
                ssims.append(try ImageMetrics.ssim(fp, q, windowSize: 7))
                psnrs.append(psnr(fp, q))
            }
            XCTAssertEqual(Array(row[7...8]), ssims.map { String(format: "%.6f", $0) }, row[1])
            XCTAssertEqual(Array(row[9...10]), psnrs.map { String(format: "%.4f", $0) }, row[1])
            XCTAssertEqual(row[5], String(format: "%.6f", (ssims[0] + ssims[1]) / 2))
            XCTAssertEqual(row[6], String(format: "%.4f", (psnrs[0] + psnrs[1]) / 2))
        }
        XCTAssertGreaterThan(Double(rows[1][5]) ?? 0, Double(rows[2][5]) ?? 1)

        // Contact sheet: FP + 2 columns of 128 px images (column 128 + gap 8, row label 34, margins 10), 2 rows
        // (image 128 + caption 16 + gap 8) under the title (40) and column headers (48).
        let sheet = try RGBImage.readPNG(work.appendingPathComponent("contact_sheet.png"))
        XCTAssertEqual([sheet.width, sheet.height], [20 + 34 + 3 * 136, 20 + 40 + 48 + 2 * 152])
        // The FP image of prompt 0 sits unscaled at (44, 98).
        let fp0 = try RGBImage.readPNG(work.appendingPathComponent("images/fp/0.png"))
        for (x, y) in [(0, 0), (17, 90), (127, 127)] {
            XCTAssertEqual((0..<3).map { sheet[44 + x, 98 + y, $0] }, (0..<3).map { fp0[x, y, $0] }, "pixel \(x),\(y)")
        }
        let plot = try RGBImage.readPNG(work.appendingPathComponent("pareto.png"))
        XCTAssertEqual([plot.width, plot.height], [900, 620])
        let pareto = try csv(work.appendingPathComponent("pareto.csv"))
        XCTAssertEqual(pareto.first, ["candidate", "mean_bits", "model_bytes", "mean_ssim", "pareto_optimal", "dominated_by"])
        XCTAssertEqual(pareto.dropFirst().map { $0[0] + " " + $0[4] }, ["weight_2.00_1.00 yes", "weight_8.00_1.00 yes"])
        for name in ["report.md", "pareto.md"] {
            XCTAssertTrue(try String(contentsOf: work.appendingPathComponent(name), encoding: .utf8).contains("weight_8.00_1.00"))
        }

        // The candidate's images are infer's (same checkpoint, bits, activations off, seeds).
        let inferred = s.dir.appendingPathComponent("infer-w8")
        try MixDQCLI.succeed(["infer", "--base-path", s.workspace.ptq.path, "--config-weight-mp", s.candidates.appendingPathComponent("weight_8.00_1.00.yaml").path,
                              "--skip-quant-act", "--num-imgs", "2", "--image-folder", inferred.path])
        for i in 0..<2 {
            XCTAssertEqual(MixDQCLI.bytes(inferred.appendingPathComponent("\(i).png")),
                           MixDQCLI.bytes(work.appendingPathComponent("images/weight_8.00_1.00/\(i).png")), "image \(i)")
        }

        // Resumable: a rerun renders nothing; a lost image is rendered again, alone; the results do not change.
        let report = try Data(contentsOf: work.appendingPathComponent("report.csv"))
        let again = try MixDQCLI.succeed(args)
        XCTAssertTrue(again.stderr.contains("0 image(s) to render, 6 cached"), again.stderr)
        try FileManager.default.removeItem(at: work.appendingPathComponent("images/weight_2.00_1.00/1.png"))
        let third = try MixDQCLI.succeed(args)
        XCTAssertTrue(third.stderr.contains("1 image(s) to render, 5 cached"), third.stderr)
        XCTAssertEqual(try Data(contentsOf: work.appendingPathComponent("report.csv")), report)
        // A cache made with other settings is refused, not mixed in.
        try MixDQCLI.fail(args + ["--seed", "7"], mentioning: ["images/fp", "other settings", "seed"])
    }

    func testActSelectionUnderAFixedWeightConfigWithProtectedLayers() throws {
        let s = try setup("select-act", weightBits: [8])
        let protected = ["conv_in", "conv_out"]
        let protect = s.dir.appendingPathComponent("act_protect.yaml")
        try protected.map { "- model.\($0)" }.joined(separator: "\n").write(to: protect, atomically: true, encoding: .utf8)
        let acts = s.dir.appendingPathComponent("acts")
        try FileManager.default.createDirectory(at: acts, withIntermediateDirectories: true)
        for b in [2, 8] {
            try QuantFlowCLITests.bitFile(s.layers.filter { !protected.contains($0) }, [:], fallback: b)
                .write(to: acts.appendingPathComponent("act_\(b).00_1.00.yaml"), atomically: true, encoding: .utf8)
        }
        let out = s.dir.appendingPathComponent("final_act_mp.yaml")
        try MixDQCLI.succeed(["search", "select", "--type", "act", "--dir", acts.path, "--config-weight-mp",
                              s.candidates.appendingPathComponent("weight_8.00_1.00.yaml").path, "--act-protect", protect.path,
                              "--prompts", "1", "--metric", "psnr", "--ckpt", s.workspace.ptq.path, "--out", out.path])
        XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: acts.appendingPathComponent("act_8.00_1.00.yaml")))
        let rows = try csv(s.dir.appendingPathComponent("select_act/report.csv"))
        XCTAssertEqual(rows.dropFirst().map { $0[1] }, ["act_8.00_1.00", "act_2.00_1.00"])
        // Protected layers run fully FP: their weights count 4 bytes per parameter, the rest 8-bit codes.
        let bytes = s.layers.reduce(0.0) { $0 + (s.params[$1] ?? .nan) * (protected.contains($1) ? 4 : 1) }
        XCTAssertEqual(rows.dropFirst().map { $0[3] }, Array(repeating: String(format: "%.0f", bytes), count: 2))
        XCTAssertEqual(rows[1][4], "yes")
        XCTAssertEqual(rows[2][4], "yes", "fewer activation bits: on the front")
    }

    /// Prompts from a text file (one per line, as the trained model's config gives them): the FP
    /// images select renders are fp-infer's for the same file.
    func testPromptsFromATextFile() throws {
        let s = try setup("select-text-prompts", weightBits: [8])
        let prompts = s.dir.appendingPathComponent("prompts.txt")
        try "a large red circle on the left, gray background\na small blue star at the top right, white background\n"
            .write(to: prompts, atomically: true, encoding: .utf8)
        try MixDQCLI.succeed(["search", "select", "--type", "weight", "--dir", s.candidates.path, "--prompts", "2", "--captions", prompts.path,
                              "--ckpt", s.workspace.ptq.path, "--out", s.dir.appendingPathComponent("final_weight_mp.yaml").path])
        let fp = s.dir.appendingPathComponent("fp")
        try MixDQCLI.succeed(["fp-infer", "--config", s.workspace.config.path, "--captions", prompts.path, "--base-path", fp.path,
                              "--num-imgs", "2", "--batch-size", "1"])
        for i in 0..<2 {
            let rendered = MixDQCLI.bytes(s.dir.appendingPathComponent("select_weight/images/fp/\(i).png"))
            XCTAssertNotNil(rendered, "select's FP image \(i)")
            XCTAssertEqual(rendered, MixDQCLI.bytes(fp.appendingPathComponent("generated_images/\(i).png")), "FP image \(i)")
        }
        try MixDQCLI.fail(["search", "select", "--type", "weight", "--dir", s.candidates.path, "--prompts", "3", "--captions", prompts.path,
                           "--ckpt", s.workspace.ptq.path, "--out", s.dir.appendingPathComponent("again.yaml").path],
                          mentioning: [prompts.path, "holds 2 captions"])
    }

    func testBadInputsAreNamedAndWriteNothing() throws {
        let s = try setup("select-bad", weightBits: [8])
        let out = s.dir.appendingPathComponent("out/final.yaml")
        let base = ["search", "select", "--ckpt", s.workspace.ptq.path, "--out", out.path]
        let empty = s.dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try MixDQCLI.fail(base + ["--type", "weight", "--dir", empty.path, "--prompts", "2"], mentioning: ["empty", "no candidate weight_*.yaml"])
        try MixDQCLI.fail(base + ["--type", "weight", "--dir", s.candidates.path, "--prompts", "0"], mentioning: ["--prompts"])
        try MixDQCLI.fail(base + ["--type", "weight", "--dir", s.candidates.path, "--prompts", "1", "--ssim-window", "511"],
                          mentioning: ["--ssim-window 511", "128x128"])
        try MixDQCLI.fail(base + ["--type", "act", "--dir", s.candidates.path, "--prompts", "1"], mentioning: ["--config-weight-mp"])
        try MixDQCLI.fail(["search", "select", "--ckpt", empty.path, "--config", s.workspace.config.path, "--out", out.path, "--type", "weight",
                           "--dir", s.candidates.path, "--prompts", "1"], mentioning: ["empty/ckpt.safetensors", "no quant checkpoint"])
        // A candidate naming a layer the model lacks, beside a good one: refused before anything renders.
        let mixed = s.dir.appendingPathComponent("mixed")
        try FileManager.default.createDirectory(at: mixed, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: s.candidates.appendingPathComponent("weight_8.00_1.00.yaml"),
                                         to: mixed.appendingPathComponent("weight_8.00_1.00.yaml"))
        try (QuantFlowCLITests.bitFile(s.layers, [:]) + "model.down_blocks.7.resnets.0.conv1: 4\n")
            .write(to: mixed.appendingPathComponent("weight_9.yaml"), atomically: true, encoding: .utf8)
        try MixDQCLI.fail(base + ["--type", "weight", "--dir", mixed.path, "--prompts", "1"],
                          mentioning: ["weight_9.yaml", "unknown layer", "down_blocks.7.resnets.0.conv1"])
        // A candidate that leaves a layer out, and one with a bit width the checkpoint has no parameters for.
        try QuantFlowCLITests.bitFile(Array(s.layers.dropLast()), [:]).write(to: mixed.appendingPathComponent("weight_9.yaml"), atomically: true, encoding: .utf8)
        try MixDQCLI.fail(base + ["--type", "weight", "--dir", mixed.path, "--prompts", "1"], mentioning: ["weight_9.yaml", "no bit width for 1"])
        try QuantFlowCLITests.bitFile(s.layers, [s.layers[0]: 3]).write(to: mixed.appendingPathComponent("weight_9.yaml"), atomically: true, encoding: .utf8)
        try MixDQCLI.fail(base + ["--type", "weight", "--dir", mixed.path, "--prompts", "1"], mentioning: ["weight_9.yaml", "\(s.layers[0]): 3"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir.appendingPathComponent("out").path), "a failed run created its output folder")
    }
}
