import Foundation
import XCTest

/// `mixdq search run` (issue 9 item 5) on the embedded default model and the ptq checkpoint of
/// `QuantFlowCLITests`: the one command writes exactly what the stage-by-stage chain of
/// `scripts/main_search.sh` writes, a rerun skips every finished stage, a changed or missing
/// output reruns only the stages that depend on it, and bad input fails before any stage.
final class SearchRunCLITests: XCTestCase {
    func workspace() throws -> QuantFlowCLITests.Workspace { try QuantFlowCLITests.sharedWorkspace() }

    /// Small settings: 1 SSIM prompt, one a value per scan, 2 selection prompts, 1 final image.
    static let small = ["--prompts", "1", "--ssim-window", "7", "--select-prompts", "2", "--final-images", "1",
                        "--weight-a-scan", "1", "--weight-k-scan", "0.8,1.2,3", "--act-a-scan", "1", "--act-k-scan", "1,1,1"]

    /// The files both ways write, relative to the output folder (the content sensitivity files are
    /// checked on a subset of layers and then shared).
    static let products = [
        "sensitivity_weight_quality.yaml", "sensitivity_act_quality.yaml", "act_protect.yaml", "ratio_weight.yaml", "ratio_act.yaml",
        "final_weight_mp.yaml", "final_act_mp.yaml", "final_images/0.png",
    ]

    /// `model.<layer>: [a, b, c]` lines of a sensitivity file, by layer.
    func scoreLines(_ url: URL) throws -> [String: String] {
        var lines: [String: String] = [:]
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") where line.hasPrefix("model.") {
            let parts = line.split(separator: ":", maxSplits: 1)
            lines[String(parts[0])] = String(parts[1])
        }
        return lines
    }

    func stageLines(_ out: URL) throws -> [String] {
        try String(contentsOf: out.appendingPathComponent("search_run.log"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { $0.contains("stage ") }
    }

    func testRunEqualsTheStageChainAndResumesByStage() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("search-run")
        let model = try MixDQCLI.defaultModel()
        let out = dir.appendingPathComponent("run")
        let r = try MixDQCLI.succeed(["search", "run", "--ckpt", w.ptq.path, "--out", out.path] + Self.small, timeout: 1800)
        XCTAssertTrue(r.stdout.contains("FP sanity SQNR"), r.stdout)
        let first = try stageLines(out)
        XCTAssertEqual(first.count, 12, first.joined(separator: "\n"))
        XCTAssertTrue(first.allSatisfy { $0.contains("running (not run before)") }, first.joined(separator: "\n"))

        // The same stages, one command each, as scripts/main_search.sh runs them.
        let chain = dir.appendingPathComponent("chain")
        try FileManager.default.createDirectory(at: chain, withIntermediateDirectories: true)
        func c(_ name: String) -> String { chain.appendingPathComponent(name).path }
        let ckpt = ["--ckpt", w.ptq.path]
        // Content sensitivity (SSIM over rendered images, the costly part) is checked on a few layers:
        // every layer's scores are measured alone, so a subset run gives the same values.
        let subset = "attn2\\.to_k$|ff\\.net\\.2$"
        for type in ["weight", "act"] {
            let name = "sensitivity_\(type)_content.yaml"
            try MixDQCLI.succeed(["search", "sensitivity"] + ckpt + ["--type", type, "--group", "content", "--prompts", "1",
                                                                      "--ssim-window", "7", "--layers", subset, "--out", c("subset_" + name)])
            let whole = try scoreLines(out.appendingPathComponent(name)), part = try scoreLines(chain.appendingPathComponent("subset_" + name))
            XCTAssertGreaterThan(part.count, 3, "subset of \(name)")
            for (layer, scores) in part { XCTAssertEqual(whole[layer], scores, "\(name): \(layer)") }
            let header = try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8)
            for line in ["# type: \(type)\n", "# group: content\n", "# prompts: 1\n", "# ssim-window: 7\n", "# seed: 42\n", "# layers: all\n"] {
                XCTAssertTrue(header.contains(line), "\(name) lacks '\(line)'")
            }
            try FileManager.default.copyItem(at: out.appendingPathComponent(name), to: chain.appendingPathComponent(name))
            try MixDQCLI.succeed(["search", "sensitivity"] + ckpt + ["--type", type, "--group", "quality", "--out", c("sensitivity_\(type)_quality.yaml")])
        }
        try MixDQCLI.succeed(["search", "protect", "--sensitivity-content", c("sensitivity_act_content.yaml"),
                              "--sensitivity-quality", c("sensitivity_act_quality.yaml"), "--model", model.path, "--out", c("act_protect.yaml")])
        try MixDQCLI.succeed(["search", "ratios", "--model", model.path, "--type", "weight", "--out", c("ratio_weight.yaml")])
        try MixDQCLI.succeed(["search", "ratios", "--model", model.path, "--type", "act", "--height", "128", "--width", "128",
                              "--out", c("ratio_act.yaml")])
        try MixDQCLI.succeed(["search", "allocate-scan", "--type", "weight", "--target", "5", "--a-scan", "1", "--k-scan", "0.8,1.2,3",
                              "--content-scores", c("sensitivity_weight_content.yaml"), "--quality-scores", c("sensitivity_weight_quality.yaml"),
                              "--ratio", c("ratio_weight.yaml"), "--out", c("candidates_weight")])
        try MixDQCLI.succeed(["search", "select", "--type", "weight", "--dir", c("candidates_weight"), "--prompts", "2",
                              "--ratio", c("ratio_weight.yaml")] + ckpt + ["--out", c("final_weight_mp.yaml")])
        try MixDQCLI.succeed(["search", "allocate-scan", "--type", "act", "--target", "7.7", "--a-scan", "1", "--k-scan", "1,1,1",
                              "--content-scores", c("sensitivity_act_content.yaml"), "--quality-scores", c("sensitivity_act_quality.yaml"),
                              "--ratio", c("ratio_act.yaml"), "--exclude", c("act_protect.yaml"), "--out", c("candidates_act")])
        try MixDQCLI.succeed(["search", "select", "--type", "act", "--dir", c("candidates_act"), "--config-weight-mp", c("final_weight_mp.yaml"),
                              "--act-protect", c("act_protect.yaml"), "--prompts", "2", "--ratio", c("ratio_act.yaml")] + ckpt
                             + ["--out", c("final_act_mp.yaml")])
        try MixDQCLI.succeed(["infer", "--base-path", w.ptq.path, "--config-weight-mp", c("final_weight_mp.yaml"),
                              "--config-act-mp", c("final_act_mp.yaml"), "--act-protect", c("act_protect.yaml"),
                              "--image-folder", c("final_images"), "--num-imgs", "1", "--batch-size", "1"])
        for name in Self.products {
            let a = MixDQCLI.bytes(out.appendingPathComponent(name)), b = MixDQCLI.bytes(chain.appendingPathComponent(name))
            XCTAssertNotNil(a, "search run did not write \(name)")
            XCTAssertEqual(a, b, "\(name): search run and the stage-by-stage chain differ")
        }
        for folder in ["candidates_weight", "candidates_act"] {
            let names = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent(folder).path).sorted()
            XCTAssertEqual(names, try FileManager.default.contentsOfDirectory(atPath: chain.appendingPathComponent(folder).path).sorted(), folder)
            XCTAssertGreaterThan(names.filter { $0.hasSuffix(".yaml") }.count, 0, "\(folder): no candidate")
            for n in names {
                XCTAssertEqual(MixDQCLI.bytes(out.appendingPathComponent(folder).appendingPathComponent(n)),
                               MixDQCLI.bytes(chain.appendingPathComponent(folder).appendingPathComponent(n)), "\(folder)/\(n)")
            }
        }
        // The final bit files cover the model's layers and hold the searched widths.
        let layers = try QuantFlowCLITests.layers(in: w.checkpoint)
        let weightText = try String(contentsOf: out.appendingPathComponent("final_weight_mp.yaml"), encoding: .utf8)
        let weightLines = weightText.split(separator: "\n").filter { $0.hasPrefix("model.") }
        XCTAssertEqual(Set(weightLines.map { String($0.split(separator: ":")[0].dropFirst("model.".count)) }), Set(layers), weightText)

        // A rerun with the same arguments skips every stage and rewrites nothing.
        let kept = Self.products + ["sensitivity_weight_content.yaml", "sensitivity_act_content.yaml"]
        let before = try kept.map { try Data(contentsOf: out.appendingPathComponent($0)) }
        try MixDQCLI.succeed(["search", "run", "--ckpt", w.ptq.path, "--out", out.path] + Self.small)
        let second = try stageLines(out).suffix(12)
        XCTAssertTrue(second.allSatisfy { $0.contains("skipped") }, second.joined(separator: "\n"))
        XCTAssertEqual(try kept.map { try Data(contentsOf: out.appendingPathComponent($0)) }, before)

        // The weight phase alone: its five stages, all done already.
        let weightArgs = Self.small.split(separator: "--final-images").map(Array.init)
        try MixDQCLI.succeed(["search", "run", "--ckpt", w.ptq.path, "--out", out.path, "--weight-only"] + weightArgs[0] + weightArgs[1].dropFirst())
        let weightOnly = try stageLines(out).suffix(5)
        XCTAssertEqual(weightOnly.map { $0.components(separatedBy: "stage ")[1].components(separatedBy: ":")[0] },
                       ["1/5 sensitivity weight content", "2/5 sensitivity weight quality", "3/5 ratios weight", "4/5 allocate-scan weight",
                        "5/5 select weight"])
        XCTAssertTrue(weightOnly.allSatisfy { $0.contains("skipped") }, weightOnly.joined(separator: "\n"))

        // A deleted act selection reruns that stage only: it writes the same file again, so the final
        // images, judged by their inputs' content, are still current.
        try FileManager.default.removeItem(at: out.appendingPathComponent("final_act_mp.yaml"))
        try MixDQCLI.succeed(["search", "run", "--ckpt", w.ptq.path, "--out", out.path] + Self.small)
        let third = Array(try stageLines(out).suffix(12))
        XCTAssertEqual(third.filter { $0.contains("running") }.map { $0.components(separatedBy: "stage ")[1].components(separatedBy: ":")[0] },
                       ["11/12 select act"], third.joined(separator: "\n"))
        XCTAssertTrue(third[11].contains("12/12 final images: done before"), third[11])
        XCTAssertTrue(third[10].contains("final_act_mp.yaml is missing"), third[10])
        XCTAssertEqual(try kept.map { try Data(contentsOf: out.appendingPathComponent($0)) }, before)

        // Other selection prompts: the stages before the selections are skipped, the weight selection reruns.
        try MixDQCLI.succeed(["search", "run", "--ckpt", w.ptq.path, "--out", out.path] + Self.small + ["--select-prompts", "1"], timeout: 1800)
        let fourth = Array(try stageLines(out).suffix(12))
        XCTAssertTrue(fourth.prefix(8).allSatisfy { $0.contains("skipped") }, fourth.joined(separator: "\n"))
        XCTAssertTrue(fourth[8].contains("9/12 select weight: running (its arguments changed)"), fourth[8])

        // A stage that fails names itself; what came before stays, and the failed stage has no record.
        try MixDQCLI.fail(["search", "run", "--ckpt", w.ptq.path, "--out", out.path, "--weight-target", "1.5"] + Self.small,
                          mentioning: ["stage 'allocate-scan weight'", "no (a, k) grid point was feasible"], timeout: 1800)
        let manifest = try String(contentsOf: out.appendingPathComponent("search_run.json"), encoding: .utf8)
        XCTAssertFalse(manifest.contains("\"allocate-scan weight\""), manifest)
        XCTAssertTrue(manifest.contains("\"sensitivity act quality\""), manifest)
    }

    func testBadInputFailsBeforeAnyStage() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("search-run-bad")
        try MixDQCLI.fail(["search", "run"], mentioning: ["--ckpt"])
        let absent = dir.appendingPathComponent("absent")
        try MixDQCLI.fail(["search", "run", "--ckpt", absent.path, "--out", dir.appendingPathComponent("o1").path],
                          mentioning: [absent.path, "no checkpoint"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("o1").path), "an output folder was made")
        try MixDQCLI.fail(["search", "run", "--ckpt", w.ptq.path, "--weight-target", "nan"], mentioning: ["--weight-target"])
        try MixDQCLI.fail(["search", "run", "--ckpt", w.ptq.path, "--ssim-window", "8"], mentioning: ["--ssim-window 8"])
        try MixDQCLI.fail(["search", "run", "--ckpt", w.ptq.path, "--final-images", "-1"], mentioning: ["--final-images -1"])
        try MixDQCLI.fail(["search", "run", "--ckpt", w.ptq.path, "--weight-only", "--final-images", "2"], mentioning: ["--weight-only"])
        // The scans' k grids are checked before the first stage.
        let out = dir.appendingPathComponent("o2")
        try MixDQCLI.fail(["search", "run", "--ckpt", w.ptq.path, "--out", out.path, "--weight-k-scan", "1,0.5,3"], mentioning: ["--weight-k-scan 1,0.5,3"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "an output folder was made")
        // A corrupt stage record is an error naming it, not a silent restart.
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try "{".write(to: out.appendingPathComponent("search_run.json"), atomically: true, encoding: .utf8)
        try MixDQCLI.fail(["search", "run", "--ckpt", w.ptq.path, "--out", out.path], mentioning: ["search_run.json", "not a search run manifest"])
    }
}
