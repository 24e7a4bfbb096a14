import Foundation
import XCTest

/// `mixdq search allocate`, `allocate-scan` and `ratios` as a user runs them (issue 9 item 3):
/// outputs checked against values derived here, every bad input class named, no partial files.
final class SearchCLITests: XCTestCase {
    func write(_ text: String, _ name: String, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Two content and two quality layers with hand-checkable optima (equal ratios within a group).
    func inputs(in dir: URL) throws -> (scores: URL, ratio: URL, quality: URL) {
        let ratio = try write("""
            model.conv_in: 1.0
            model.a.attn2.to_q: 2.0
            model.a.ff.net.2: 2.0
            model.b.conv1: 1.0
            """, "ratio.yaml", in: dir)
        // Content: to_q gains 0.2 from 2 -> 8 bits, ff.net.2 gains 0.05.
        let scores = try write("""
            model.a.attn2.to_q: [0.7, 0.8, 0.9]
            model.a.ff.net.2: [0.90, 0.92, 0.95]
            """, "content.yaml", in: dir)
        let quality = try write("""
            model.conv_in: [10, 30, 60]
            model.b.conv1: [20, 35, 50]
            """, "quality.yaml", in: dir)
        return (scores, ratio, quality)
    }

    func read(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "<missing>" }

    func testAllocateWritesTheOptimumForExactlyTheGroup() throws {
        let dir = try MixDQCLI.tempDir("alloc")
        let f = try inputs(in: dir)
        let out = dir.appendingPathComponent("out/content.yaml")
        // Target 5 ± 0: the content means are (b1 + b2) / 2, so {2, 8} or {8, 2} or {4, 4... no: 6}.
        // 2+8: to_q at 8 (0.9 + 0.90 = 1.80) beats ff at 8 (0.7 + 0.95 = 1.65).
        let r = try MixDQCLI.succeed(["search", "allocate", "--scores", f.scores.path, "--ratio", f.ratio.path, "--bits", "2,4,8",
                                      "--target", "5", "--tolerance", "0", "--group", "content", "--out", out.path])
        XCTAssertEqual(read(out), "model.a.attn2.to_q: 8\nmodel.a.ff.net.2: 2\n")
        XCTAssertTrue(r.stdout.contains("objective (GLPK): 1.800000"), r.stdout)
        XCTAssertTrue(r.stdout.contains("mean bits: 5.0000 (target 5 ±0)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("content group: 2 layer(s) (2-bit: 1, 4-bit: 0, 8-bit: 1)"), r.stdout)

        // Quality group, bits 4, 8, target 6 ± 0.02 with ratios 1, 1: one layer at 8 bits. conv_in gains 30, conv1 15.
        let q = dir.appendingPathComponent("quality.out.yaml")
        let rq = try MixDQCLI.succeed(["search", "allocate", "--scores", f.quality.path, "--ratio", f.ratio.path, "--bits", "4,8",
                                       "--target", "6", "--group", "quality", "--out", q.path])
        XCTAssertEqual(read(q), "model.conv_in: 8\nmodel.b.conv1: 4\n")
        XCTAssertTrue(rq.stdout.contains("objective (GLPK): 95.000000"), rq.stdout)
    }

    func testAllocateUnderAByteBudget() throws {
        let dir = try MixDQCLI.tempDir("alloc-bytes")
        let f = try inputs(in: dir)
        let params = try write("model.conv_in: 1000\nmodel.b.conv1: 4000\nmodel.a.attn2.to_q: 10\nmodel.a.ff.net.2: 10\n", "params.yaml", in: dir)
        let out = dir.appendingPathComponent("q.yaml")
        // Any mean in [4, 8]; both at 8 bits would be 5000 bytes. 3000 bytes: conv1 at 8 bits (4000) is out,
        // conv_in at 8 (1000 + 2000 = 3000) fits exactly.
        let r = try MixDQCLI.succeed(["search", "allocate", "--scores", f.quality.path, "--ratio", f.ratio.path, "--bits", "4,8",
                                      "--target", "6", "--tolerance", "2", "--group", "quality", "--max-bytes", "3000",
                                      "--params", params.path, "--out", out.path])
        XCTAssertEqual(read(out), "model.conv_in: 8\nmodel.b.conv1: 4\n")
        XCTAssertTrue(r.stdout.contains("packed weight bytes: 3000 (budget 3000)"), r.stdout)
        try MixDQCLI.fail(["search", "allocate", "--scores", f.quality.path, "--ratio", f.ratio.path, "--bits", "4,8", "--target", "6",
                           "--tolerance", "2", "--group", "quality", "--max-bytes", "2000", "--params", params.path, "--out", out.path],
                          mentioning: ["--max-bytes 2000", "need at least 2500 packed bytes"])
        try MixDQCLI.fail(["search", "allocate", "--scores", f.quality.path, "--ratio", f.ratio.path, "--target", "6",
                           "--max-bytes", "2000", "--out", out.path], mentioning: ["--max-bytes needs --params"])
    }

    func testAllocateBadInputsNameTheFileAndWriteNothing() throws {
        let dir = try MixDQCLI.tempDir("alloc-bad")
        let f = try inputs(in: dir)
        let out = dir.appendingPathComponent("never.yaml")
        func base(_ scores: URL, _ ratio: URL, group: String = "content") -> [String] {
            ["search", "allocate", "--scores", scores.path, "--ratio", ratio.path, "--group", group, "--out", out.path]
        }
        // Infeasible target: content means with bits 4, 8 are 4, 6, 8.
        try MixDQCLI.fail(base(f.scores, f.ratio) + ["--bits", "4,8", "--target", "5"],
                          mentioning: ["no assignment of bits 4,8", "content group", "5 ±0.02"])
        // Target out of range.
        try MixDQCLI.fail(base(f.scores, f.ratio) + ["--target", "9"], mentioning: ["--target 9", "out of the achievable range", "[2, 8]"])
        // Missing bit column.
        try MixDQCLI.fail(base(f.scores, f.ratio) + ["--bits", "2,3", "--target", "2.5"],
                          mentioning: [f.scores.path, "no score column for 3 bits"])
        // Score row with too few columns.
        let short = try write("model.a.attn2.to_q: [0.7, 0.8]\nmodel.a.ff.net.2: [0.9, 0.92, 0.95]\n", "short.yaml", in: dir)
        try MixDQCLI.fail(base(short, f.ratio) + ["--target", "5"], mentioning: [short.path, "a.attn2.to_q", "2 score(s), expected 3"])
        // A scored layer the ratio file does not know (unknown layer / ratio file not covering the group).
        let extra = try write(read(f.scores) + "\nmodel.z.attn2.to_v: [0.1, 0.2, 0.3]\n", "extra.yaml", in: dir)
        try MixDQCLI.fail(base(extra, f.ratio) + ["--target", "5"], mentioning: [f.ratio.path, "no ratio for 1 layer(s)", "z.attn2.to_v"])
        // A group layer without scores.
        let partial = try write("model.a.attn2.to_q: [0.7, 0.8, 0.9]\n", "partial.yaml", in: dir)
        try MixDQCLI.fail(base(partial, f.ratio) + ["--target", "5"], mentioning: [partial.path, "no scores for 1 of the 2", "a.ff.net.2"])
        // Unknown layer in the exclude list.
        let exclude = try write("- model.nope.conv\n", "exclude.yaml", in: dir)
        try MixDQCLI.fail(base(f.scores, f.ratio) + ["--target", "5", "--exclude", exclude.path], mentioning: [exclude.path, "unknown layer", "nope.conv"])
        // Flags.
        try MixDQCLI.fail(base(f.scores, f.ratio) + ["--target", "5", "--bits", "2,x"], mentioning: ["--bits 2,x"])
        try MixDQCLI.fail(base(f.scores, f.ratio, group: "middle") + ["--target", "5"], mentioning: ["--group middle"])
        try MixDQCLI.fail(base(f.scores, f.ratio) + ["--target", "-1"], mentioning: ["--target"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "no output after a failure")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary files left")
    }

    func testAllocateScanWritesEachFeasibleGridPoint() throws {
        let dir = try MixDQCLI.tempDir("scan")
        let f = try inputs(in: dir)
        let out = dir.appendingPathComponent("candidates")
        // r = (2 + 2) / (1 + 1) = 2. a = 6, k = 1: both targets 6 (content {2,8} or {4,8}... 6 = (4+8)/2).
        // k = 0.5: quality 6*3/2 = 9 > 8: skipped.
        let r = try MixDQCLI.succeed(["search", "allocate-scan", "--type", "weight", "--target", "6", "--a-scan", "1", "--k-scan", "0.5,1,2",
                                      "--content-scores", f.scores.path, "--quality-scores", f.quality.path, "--ratio", f.ratio.path,
                                      "--out", out.path])
        XCTAssertTrue(r.stdout.contains("r = sum ratio(content) / sum ratio(quality) = 2.0000"), r.stdout)
        XCTAssertTrue(r.stdout.contains("a=6.00 k=0.50: skipped (quality target 9.000 outside 4...8)"), r.stdout)
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        XCTAssertEqual(files, ["scan.csv", "weight_6.00_1.00.yaml"])
        // Content at 6: to_q 8 + ff 4 (0.9 + 0.92 = 1.82) beats ff 8 + to_q 4 (0.8 + 0.95 = 1.75);
        // quality at 6: conv_in 8 (60 + 35) beats conv1 8 (30 + 50). Keys in ratio-file order.
        XCTAssertEqual(read(out.appendingPathComponent("weight_6.00_1.00.yaml")),
                       "model.conv_in: 8\nmodel.a.attn2.to_q: 8\nmodel.a.ff.net.2: 4\nmodel.b.conv1: 4\n")
        let csv = read(out.appendingPathComponent("scan.csv")).split(separator: "\n")
        XCTAssertEqual(csv.count, 3)
        XCTAssertTrue(csv[2].hasPrefix("weight_6.00_1.00.yaml,6.000000,1.000000,6.000000,6.000000,6.000000,6.000000,6.000000,1.820000,95.000000,written"), "\(csv)")

        // Nothing feasible is an error (but the summary is still written).
        let none = dir.appendingPathComponent("none")
        try MixDQCLI.fail(["search", "allocate-scan", "--type", "weight", "--target", "6", "--a-scan", "1", "--k-scan", "0.5,0.5,1",
                           "--content-scores", f.scores.path, "--quality-scores", f.quality.path, "--ratio", f.ratio.path,
                           "--out", none.path], mentioning: ["no (a, k) grid point was feasible"])
        try MixDQCLI.fail(["search", "allocate-scan", "--type", "weight", "--target", "6", "--k-scan", "1,0.5,3",
                           "--content-scores", f.scores.path, "--quality-scores", f.quality.path, "--ratio", f.ratio.path,
                           "--out", none.path], mentioning: ["--k-scan 1,0.5,3"])
        try MixDQCLI.fail(["search", "allocate-scan", "--type", "both", "--target", "6",
                           "--content-scores", f.scores.path, "--quality-scores", f.quality.path, "--ratio", f.ratio.path,
                           "--out", none.path], mentioning: ["--type both"])
    }

    /// The default model's numbers, from its own config.json.
    func unetConfig() throws -> [String: Any] {
        let model = try MixDQCLI.defaultModel()
        let data = try Data(contentsOf: model.appendingPathComponent("unet/config.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func ratioLines(_ url: URL) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in read(url).split(separator: "\n") {
            let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { out[parts[0]] = Double(parts[1]) }
        }
        return out
    }

    func testRatiosFromTheModel() throws {
        let model = try MixDQCLI.defaultModel()
        let config = try unetConfig()
        let inCh = try XCTUnwrap(config["in_channels"] as? Int), outCh = try XCTUnwrap(config["out_channels"] as? Int)
        let ch0 = try XCTUnwrap((config["block_out_channels"] as? [Int])?.first)
        let cross = try XCTUnwrap(config["cross_attention_dim"] as? Int)
        let dir = try MixDQCLI.tempDir("ratios")

        let weight = dir.appendingPathComponent("weight.yaml")
        try MixDQCLI.succeed(["search", "ratios", "--model", model.path, "--type", "weight", "--out", weight.path])
        let w = ratioLines(weight)
        let convIn = Double(inCh * ch0 * 9)
        XCTAssertEqual(w["model.conv_in"], 1.0)
        XCTAssertEqual(try XCTUnwrap(w["model.conv_out"]), Double(ch0 * outCh * 9) / convIn, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(w["model.time_embedding.linear_1"]), Double(ch0 * 4 * ch0) / convIn, accuracy: 1e-12)

        let params = dir.appendingPathComponent("params.yaml")
        try MixDQCLI.succeed(["search", "ratios", "--model", model.path, "--type", "params", "--out", params.path])
        let p = ratioLines(params)
        XCTAssertEqual(p["model.conv_in"], convIn)
        XCTAssertEqual(p.count, w.count)

        let act = dir.appendingPathComponent("act.yaml")
        try MixDQCLI.succeed(["search", "ratios", "--model", model.path, "--type", "act", "--height", "128", "--width", "96", "--out", act.path])
        let a = ratioLines(act)
        let latent = Double((128 / 8) * (96 / 8))
        XCTAssertEqual(a["model.conv_in"], latent * Double(inCh) / 320)
        XCTAssertEqual(a["model.conv_out"], latent * Double(ch0) / 320)
        let toK = a.filter { $0.key.hasSuffix("attn2.to_k") }
        XCTAssertFalse(toK.isEmpty)
        for (k, v) in toK { XCTAssertEqual(v, Double(77 * cross) / 320, accuracy: 1e-12, k) }
        XCTAssertEqual(Set(a.keys), Set(w.keys), "act and weight files name the same layers")

        try MixDQCLI.fail(["search", "ratios", "--model", model.path, "--type", "act", "--height", "100", "--out", act.path],
                          mentioning: ["--height", "multiple of 8"])
        try MixDQCLI.fail(["search", "ratios", "--model", model.path, "--type", "bias", "--out", act.path], mentioning: ["--type bias"])
        try MixDQCLI.fail(["search", "ratios", "--model", dir.appendingPathComponent("absent").path, "--type", "weight", "--out", act.path],
                          mentioning: ["absent"])
    }
}
