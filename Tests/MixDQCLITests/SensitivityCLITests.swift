import Foundation
import XCTest

/// `mixdq search sensitivity` and `search merge` as a user (or a Slurm / Kubernetes job) runs
/// them, on the embedded default model and the ptq checkpoint of `QuantFlowCLITests`.
final class SensitivityCLITests: XCTestCase {
    static let layers = "^conv_(in|out)$|^mid_block\\.resnets\\.0\\.conv1$"

    func workspace() throws -> QuantFlowCLITests.Workspace { try QuantFlowCLITests.sharedWorkspace() }

    func sensitivity(_ w: QuantFlowCLITests.Workspace, out: URL, _ extra: [String] = []) -> [String] {
        ["search", "sensitivity", "--ckpt", w.ptq.path, "--type", "weight", "--group", "quality", "--layers", Self.layers,
         "--out", out.path] + extra
    }

    func testQualityRunShardsFromTheEnvironmentAndMerge() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("sens-cli")
        let whole = dir.appendingPathComponent("whole.yaml")
        let r = try MixDQCLI.succeed(sensitivity(w, out: whole))
        XCTAssertTrue(r.stdout.contains("FP sanity SQNR"), r.stdout)
        XCTAssertTrue(r.stderr.contains("[3/3] model.conv_out: [") && r.stderr.contains("ETA"), r.stderr)
        let text = try String(contentsOf: whole, encoding: .utf8)
        let entries = text.split(separator: "\n").filter { $0.hasPrefix("model.") }
        XCTAssertEqual(entries.map { $0.split(separator: ":")[0] }, ["model.conv_in", "model.mid_block.resnets.0.conv1", "model.conv_out"])
        XCTAssertTrue(text.contains("# shard: 0/1\n# run-layers: 3\n"), text)

        // A Slurm array task (--array=1-2, this is task 2) and a Kubernetes Indexed Job pod (index 0 of 2).
        let s1 = dir.appendingPathComponent("s1.yaml"), s0 = dir.appendingPathComponent("s0.yaml")
        try MixDQCLI.succeed(sensitivity(w, out: s1, ["--shard", "auto"]),
                             environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1"])
        try MixDQCLI.succeed(sensitivity(w, out: s0, ["--shard", "auto"]),
                             environment: ["JOB_COMPLETION_INDEX": "0", "MIXDQ_SHARD_COUNT": "2"])
        XCTAssertTrue(try String(contentsOf: s1, encoding: .utf8).contains("# shard: 1/2\n"))
        let merged = dir.appendingPathComponent("merged.yaml")
        try MixDQCLI.succeed(["search", "merge", s1.path, s0.path, "--out", merged.path])
        XCTAssertEqual(MixDQCLI.bytes(merged), MixDQCLI.bytes(whole), "merged shards differ from the unsharded run")

        // Merge refuses a missing shard and a corrupt one, writing nothing.
        let bad = dir.appendingPathComponent("bad.yaml")
        try MixDQCLI.fail(["search", "merge", s0.path, "--out", bad.path], mentioning: ["missing shard(s) 1/2"])
        let cut = dir.appendingPathComponent("cut.yaml")
        let s1Text = try String(contentsOf: s1, encoding: .utf8)
        try String(s1Text.dropLast(5)).write(to: cut, atomically: true, encoding: .utf8)
        try MixDQCLI.fail(["search", "merge", s0.path, cut.path, "--out", bad.path], mentioning: [cut.path, "does not end with a newline"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad.path))
    }

    func testBadInputIsNamedAndWritesNothing() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("sens-cli-bad")
        let out = dir.appendingPathComponent("out.yaml")
        let cases: [([String], [String], [String: String])] = [
            (["--layers", "^no_such_layer$"], ["--layers '^no_such_layer$' matches no layer"], [:]),
            (["--shard", "2/2"], ["--shard must be I/N"], [:]),
            (["--shard", "auto"], ["--shard auto", "JOB_COMPLETION_INDEX 5 is outside"], ["JOB_COMPLETION_INDEX": "5", "MIXDQ_SHARD_COUNT": "2"]),
            (["--shard", "auto"], ["SLURM_ARRAY_TASK_COUNT is 'x'"], ["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "x"]),
            (["--bits", "2,3"], ["no parameters for 3 bit(s)"], [:]),
            (["--calib", dir.appendingPathComponent("missing.h5").path], ["missing.h5"], [:]),
        ]
        for (extra, mentions, env) in cases {
            try MixDQCLI.fail(sensitivity(w, out: out, extra), mentioning: mentions, environment: env)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(extra): output written")
        }
        try MixDQCLI.fail(["search", "sensitivity", "--ckpt", w.ptq.path, "--type", "both", "--out", out.path], mentioning: ["--type both"])
    }

    func testFPInferTakesItsShardFromTheEnvironment() throws {
        let w = try workspace()
        let base = try MixDQCLI.tempDir("fp-auto")
        try MixDQCLI.succeed(["fp-infer", "--config", w.config.path, "--base-path", base.path, "--num-imgs", "3", "--shard", "auto"],
                             environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"])
        let present = (0..<3).filter { FileManager.default.fileExists(atPath: base.appendingPathComponent("generated_images/\($0).png").path) }
        XCTAssertEqual(present, [1])
    }
}

extension SensitivityCLITests {
    func testContentLayerScoredBySSIMOfImages() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("sens-cli-ssim")
        let out = dir.appendingPathComponent("act_content.yaml")
        let layer = "down_blocks.2.attentions.0.transformer_blocks.0.ff.net.2"
        let args = ["search", "sensitivity", "--ckpt", w.ptq.path, "--type", "act", "--group", "content", "--layers", "^\(layer)$",
                    "--prompts", "2", "--out", out.path]
        // The original's 511 window does not fit the embedded model's 128x128 images.
        try MixDQCLI.fail(args, mentioning: ["--ssim-window 511 is larger than the 128x128 images"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        try MixDQCLI.succeed(args + ["--ssim-window", "7"])
        let text = try String(contentsOf: out, encoding: .utf8)
        XCTAssertTrue(text.contains("# ssim-window: 7\n# seed: 42\n# steps: 1\n# guidance: 0.0\n# size: 128x128\n"), text)
        let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("model.\(layer): [") })
        let values = line.split(separator: "[")[1].dropLast().split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        XCTAssertEqual(values.count, 3)
        XCTAssertTrue(values.allSatisfy { $0 > 0 && $0 <= 1 }, "\(values)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path + ".work"), "FP image cache left after completion")
    }
}
