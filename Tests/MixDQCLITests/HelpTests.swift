import Foundation
import XCTest

/// Golden `--help` checks (swift-argument-parser's layout): every subcommand answers `--help` with
/// exit 0 on stdout, shows its USAGE line and mentions each documented option. Key lines only, so
/// rewording a help text does not churn these tests.
final class HelpTests: XCTestCase {
    /// `mixdq <path> --help`: exit 0, `USAGE: mixdq <path>`, and every string of `mentions`.
    func assertHelp(_ path: [String], mentions: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try MixDQCLI.run(path + ["--help"], file: file, line: line)
        XCTAssertEqual(r.status, 0, "\(r)", file: file, line: line)
        let usage = (["USAGE: mixdq"] + path).joined(separator: " ")
        XCTAssertTrue(r.stdout.contains("OVERVIEW:"), "no OVERVIEW:\n\(r)", file: file, line: line)
        XCTAssertTrue(r.stdout.contains(usage), "no '\(usage)':\n\(r)", file: file, line: line)
        XCTAssertTrue(r.stdout.contains("-h, --help"), "no -h, --help:\n\(r)", file: file, line: line)
        for m in mentions {
            XCTAssertTrue(r.stdout.contains(m), "mixdq \(path.joined(separator: " ")) --help should mention '\(m)':\n\(r.stdout)",
                          file: file, line: line)
        }
    }

    static let modelOptions = ["--config <config>", "--model <model>", "--precision <precision>", "values: fp32"]
    static let generationOptions = ["--prompt <prompt>", "--captions <captions>", "--num-imgs <num-imgs>", "(default: 32)",
                                    "--batch-size <batch-size>", "--seed <seed>", "--cfg <cfg>", "--steps <steps>",
                                    "--height <height>", "--width <width>", "--image-folder <image-folder>",
                                    "--shard <shard>", "(default: 0/1)"]

    func testRootListsEverySubcommand() throws {
        let r = try MixDQCLI.run(["--help"])
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertTrue(r.stdout.contains("USAGE: mixdq <subcommand>"), "\(r)")
        XCTAssertTrue(r.stdout.contains("SUBCOMMANDS:"), "\(r)")
        for sub in ["fp-infer", "default-model", "calib-data", "ptq", "search", "infer", "forward", "bench"] {
            XCTAssertTrue(r.stdout.contains("\n  \(sub) "), "mixdq --help should list '\(sub)':\n\(r.stdout)")
        }
        // `mixdq help <sub>` is the same text as `mixdq <sub> --help`.
        let a = try MixDQCLI.run(["help", "infer"]), b = try MixDQCLI.run(["infer", "--help"])
        XCTAssertEqual(a.status, 0)
        XCTAssertEqual(a.stdout, b.stdout)
    }

    func testFPInfer() throws {
        try assertHelp(["fp-infer"], mentions: ["--base-path <base-path>", "generated_images", "run.log"]
            + Self.modelOptions + Self.generationOptions)
    }

    func testInfer() throws {
        try assertHelp(["infer"], mentions: ["--base-path <base-path>", "--ckpt <ckpt>", "--config-weight-mp <config-weight-mp>",
                                             "--config-act-mp <config-act-mp>", "--act-protect <act-protect>",
                                             "--skip-quant-act", "--skip-quant-weight"]
            + Self.modelOptions + Self.generationOptions)
    }

    func testCalibData() throws {
        try assertHelp(["calib-data"], mentions: ["calib_data.path", "HDF5", "--save-image-path <save-image-path>",
                                                  "--seed <seed>", "(default: 42)", "--log <log>"] + Self.modelOptions)
    }

    func testPTQ() throws {
        try assertHelp(["ptq"], mentions: ["--outdir <outdir>", "ckpt.safetensors", "--seed <seed>", "(default: 42)"]
            + Self.modelOptions)
    }

    func testSearch() throws {
        try assertHelp(["search"], mentions: ["mixed-precision"])
    }

    func testDefaultModel() throws {
        try assertHelp(["default-model"], mentions: ["--output <output>"])
    }

    func testForward() throws {
        let r = try MixDQCLI.run(["forward", "--help"])
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertTrue(r.stdout.contains("USAGE: mixdq forward <subcommand>"), "\(r)")
        for sub in ["unet", "text-encoder", "text-encoder-2", "vae-decoder"] {
            XCTAssertTrue(r.stdout.contains("\n  \(sub) "), "mixdq forward --help should list '\(sub)':\n\(r.stdout)")
        }
        let io = ["--model <model>", "--input <input>", "--output <output>", "--precision <precision>"]
        try assertHelp(["forward", "unet"], mentions: io + ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"])
        try assertHelp(["forward", "text-encoder"], mentions: io + ["input_ids", "pooler_output"])
        try assertHelp(["forward", "text-encoder-2"], mentions: io + ["input_ids", "text_embeds"])
        try assertHelp(["forward", "vae-decoder"], mentions: io + ["latents", "fp32"])
    }

    func testBench() throws {
        let r = try MixDQCLI.run(["bench", "--help"])
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertTrue(r.stdout.contains("USAGE: mixdq bench <subcommand>"), "\(r)")
        for sub in ["unet", "linear"] {
            XCTAssertTrue(r.stdout.contains("\n  \(sub) "), "mixdq bench --help should list '\(sub)':\n\(r.stdout)")
        }
        try assertHelp(["bench", "unet"], mentions: ["--random-weights", "--model-config <model-config>", "--model <model>",
                                                     "--height <height>", "--width <width>", "--precision <precision>",
                                                     "--runs <runs>", "--warmup <warmup>", "--seed <seed>", "--json", "--profile"])
        try assertHelp(["bench", "linear"], mentions: ["--rows <rows>", "--in-features <in-features>",
                                                       "--out-features <out-features>", "--precision <precision>", "--runs <runs>"])
    }

    func testUnknownSubcommandAndOptionExitNonZero() throws {
        let a = try MixDQCLI.run(["no-such-command"])
        XCTAssertNotEqual(a.status, 0, "\(a)")
        XCTAssertTrue(a.stderr.contains("no-such-command"), "\(a)")
        let b = try MixDQCLI.run(["infer", "--base-path", "unused", "--no-such-option"])
        XCTAssertNotEqual(b.status, 0, "\(b)")
        XCTAssertTrue(b.stderr.contains("--no-such-option"), "\(b)")
    }
}
