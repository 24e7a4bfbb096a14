import Foundation
import XCTest

/// `mixdq search protect` as a user runs it (issue 9 item 2), on the committed hand-written score
/// files (expected lists worked out in their comments); bad inputs exit non-zero, write nothing.
final class SearchProtectCLITests: XCTestCase {
    var content: URL { MixDQCLI.fixtures.appendingPathComponent("search/act_sensitivity_content.yaml") }
    var quality: URL { MixDQCLI.fixtures.appendingPathComponent("search/act_sensitivity_quality.yaml") }

    func testWritesTheListInferReadsCheckedAgainstTheModel() throws {
        let dir = try MixDQCLI.tempDir("protect")
        let out = dir.appendingPathComponent("sub/act_protect.yaml")
        let r = try MixDQCLI.succeed(["search", "protect", "--sensitivity-content", content.path, "--sensitivity-quality", quality.path,
                                      "--content", "2", "--quality", "2", "--model", try MixDQCLI.defaultModel().path, "--out", out.path])
        XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), """
            - model.down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2
            - model.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k
            - model.conv_out
            - model.up_blocks.2.resnets.2.conv_shortcut

            """)
        XCTAssertTrue(r.stdout.contains("content down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2: SSIM 0.990000 at 8 bits"), r.stdout)
        XCTAssertTrue(r.stdout.contains("quality conv_out: SQNR 50.120 dB at 8 bits"), r.stdout)
        XCTAssertTrue(r.stdout.contains("wrote 4 layer(s)"), r.stdout)
        // The defaults (5 + 4 at 8 bits) as the original's act_sensitivie_a8_1%.pt.
        let defaults = dir.appendingPathComponent("defaults.yaml")
        try MixDQCLI.succeed(["search", "protect", "--sensitivity-content", content.path, "--sensitivity-quality", quality.path, "--out", defaults.path])
        XCTAssertEqual(try String(contentsOf: defaults, encoding: .utf8).split(separator: "\n").count, 9)
    }

    func testBadInputsNameTheProblemAndWriteNothing() throws {
        let dir = try MixDQCLI.tempDir("protect-bad")
        let out = dir.appendingPathComponent("never.yaml")
        let base = ["search", "protect", "--sensitivity-content", content.path, "--sensitivity-quality", quality.path, "--out", out.path]
        // A bit width the files have no column for; rows with more columns than --score-bits says.
        try MixDQCLI.fail(base + ["--bits", "16"], mentioning: ["act_sensitivity_content.yaml", "no score column for 16 bits"])
        try MixDQCLI.fail(base + ["--score-bits", "2,4"], mentioning: ["act_sensitivity_content.yaml", "3 score(s), expected 2"])
        // Fewer layers of a group than asked.
        try MixDQCLI.fail(base + ["--content", "8"], mentioning: ["act_sensitivity_content.yaml", "--content 8", "only 7"])
        // A layer the model does not have.
        let bogus = dir.appendingPathComponent("content.yaml")
        try (try String(contentsOf: content, encoding: .utf8) + "model.down_blocks.9.attentions.0.transformer_blocks.0.attn2.to_q: [0.5, 0.6, 0.7]\n")
            .write(to: bogus, atomically: true, encoding: .utf8)
        try MixDQCLI.fail(["search", "protect", "--sensitivity-content", bogus.path, "--sensitivity-quality", quality.path,
                           "--model", try MixDQCLI.defaultModel().path, "--out", out.path],
                          mentioning: ["content.yaml", "unknown to the UNet", "down_blocks.9.attentions.0.transformer_blocks.0.attn2.to_q"])
        // Counts.
        try MixDQCLI.fail(base + ["--content", "-1"], mentioning: ["--content -1"])
        try MixDQCLI.fail(base + ["--content", "0", "--quality", "0"], mentioning: ["at least one layer"])
        // Score files given the wrong way round.
        try MixDQCLI.fail(["search", "protect", "--sensitivity-content", quality.path, "--sensitivity-quality", content.path, "--out", out.path],
                          mentioning: ["act_sensitivity_quality.yaml", "outside SSIM's range"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a failed run left \(out.path)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0 != "content.yaml" }, [],
                       "failed runs left files behind")
    }
}
