import Foundation
import XCTest

/// Hardened inputs through the CLI (issue 7): each case ends with a clear error naming the file,
/// key or option and a non-zero exit (never a signal), and leaves no output under its final name.
final class HardenedInputCLITests: XCTestCase {
    /// A short fp-infer on the default model: 64x64, one step.
    func fpInfer(config: URL, base: URL, images: Int = 2, extra: [String] = []) -> [String] {
        ["fp-infer", "--config", config.path, "--base-path", base.path, "--prompt", "a red bicycle", "--num-imgs", "\(images)",
         "--batch-size", "2", "--steps", "1", "--height", "64", "--width", "64"] + extra
    }

    func pngs(in folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".png") }.sorted()
    }

    // MARK: run.log and stderr

    /// stderr on a full device: the run goes on (progress is not worth a crash) and succeeds;
    /// the run.log still gets every line. An error exit with such a stderr is still an exit.
    func testAFullStderrNeitherCrashesNorStopsTheRun() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { throw XCTSkip("no /dev/full on this system") }
        _ = try MixDQCLI.defaultModel()   // the cache is warm: this test is about stderr only
        let dir = try MixDQCLI.tempDir("stderr-full")
        let config = try MixDQCLI.writeConfig(in: dir)
        let base = dir.appendingPathComponent("out")
        let full = URL(fileURLWithPath: "/dev/full")
        let ok = try MixDQCLI.run(fpInfer(config: config, base: base), stderrTo: full)
        XCTAssertEqual(ok.status, 0, "\(ok)")
        XCTAssertFalse(ok.signaled, "\(ok)")
        XCTAssertEqual(pngs(in: base.appendingPathComponent("generated_images")), ["0.png", "1.png"])
        let log = try String(contentsOf: base.appendingPathComponent("run.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("mixdq fp-infer") && log.contains("INFO - done"), log)

        let bad = try MixDQCLI.run(["fp-infer", "--base-path", base.path, "--num-imgs", "-1"], stderrTo: full)
        XCTAssertNotEqual(bad.status, 0, "\(bad)")
        XCTAssertFalse(bad.signaled, "\(bad)")
    }

    /// run.log on a full disk: the command stops before any work with an error naming the log.
    func testARunLogThatCannotBeWrittenStopsTheRunNamingIt() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { throw XCTSkip("no /dev/full on this system") }
        let dir = try MixDQCLI.tempDir("runlog-full")
        let config = try MixDQCLI.writeConfig(in: dir)
        let base = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let log = base.appendingPathComponent("run.log")
        try FileManager.default.createSymbolicLink(atPath: log.path, withDestinationPath: "/dev/full")
        try MixDQCLI.fail(fpInfer(config: config, base: base), mentioning: [log.path, "cannot write the run log"])
        XCTAssertEqual(pngs(in: base.appendingPathComponent("generated_images")), [])
        try MixDQCLI.fail(["ptq", "--config", config.path, "--outdir", base.path], mentioning: [log.path])
        XCTAssertFalse(FileManager.default.fileExists(atPath: base.appendingPathComponent("ckpt.safetensors").path))
    }

    // MARK: default-model

    /// --output never deletes a file or a folder the command did not write.
    func testDefaultModelRefusesToReplaceWhatItDidNotWrite() throws {
        let dir = try MixDQCLI.tempDir("dm-output")
        let file = dir.appendingPathComponent("report.txt")
        try Data("keep me".utf8).write(to: file)
        try MixDQCLI.fail(["default-model", "--output", file.path], mentioning: [file.path, "refusing"])
        XCTAssertEqual(try Data(contentsOf: file), Data("keep me".utf8))

        let folder = dir.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Data("draft".utf8).write(to: folder.appendingPathComponent("sub/draft.txt"))
        try MixDQCLI.fail(["default-model", "--output", folder.path], mentioning: [folder.path, "refusing"])
        XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("sub/draft.txt")), Data("draft".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["sub"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }, [],
                       "temporary folders left behind")

        // Its own output it may replace (a rerun).
        let model = dir.appendingPathComponent("model")
        try MixDQCLI.succeed(["default-model", "--output", model.path])
        try MixDQCLI.succeed(["default-model", "--output", model.path])
        XCTAssertTrue(FileManager.default.fileExists(atPath: model.appendingPathComponent("vae/diffusion_pytorch_model.safetensors").path))
    }

    /// Several processes using a fresh cache at once: every one succeeds, and the cache holds one
    /// complete model and no temporary folders. Repeated, since a race shows only sometimes.
    func testConcurrentFirstUseOfTheCacheIsSafe() throws {
        let dir = try MixDQCLI.tempDir("dm-race")
        let config = try MixDQCLI.writeConfig(in: dir)
        for trial in 0..<2 {
            let cache = dir.appendingPathComponent("cache-\(trial)")
            var runs = [MixDQCLI.Run?](repeating: nil, count: 3)
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: runs.count) { k in
                let r = try? MixDQCLI.run(fpInfer(config: config, base: dir.appendingPathComponent("out-\(trial)-\(k)"), images: 1),
                                          environment: ["MIXDQ_CACHE": cache.path])
                lock.lock(); runs[k] = r; lock.unlock()
            }
            for (k, r) in runs.enumerated() {
                guard let r else { XCTFail("trial \(trial) process \(k) did not run"); continue }
                XCTAssertEqual(r.status, 0, "trial \(trial) process \(k):\n\(r)")
            }
            let model = cache.appendingPathComponent("tiny-sdxl-v1")
            for entry in ["MIXDQ_DEFAULT_MODEL", "model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json",
                          "tokenizer_2/merges.txt", "unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
                          "text_encoder_2/model.safetensors", "vae/diffusion_pytorch_model.safetensors"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: model.appendingPathComponent(entry).path), "trial \(trial): \(entry) missing")
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: cache.path).filter { $0.contains("partial") || $0.contains(".old-") }
            XCTAssertEqual(leftovers, [], "trial \(trial)")
            // All three made the same image from the same model.
            let images = (0..<3).map { MixDQCLI.bytes(dir.appendingPathComponent("out-\(trial)-\($0)/generated_images/0.png")) }
            XCTAssertNotNil(images[0])
            XCTAssertTrue(images.allSatisfy { $0 == images[0] }, "trial \(trial): the processes made different images")
        }
    }

    // MARK: Size bounds

    /// Every size and number is checked where it enters, with the option named; none reaches a
    /// trap or a huge allocation. Nothing is written.
    func testOptionBoundsAreCheckedAtTheEdge() throws {
        let dir = try MixDQCLI.tempDir("bounds")
        let base = dir.appendingPathComponent("b")
        let gen = ["fp-infer", "--base-path", base.path, "--prompt", "cat"]
        let cases: [([String], [String])] = [
            (["--num-imgs", "-1"], ["--num-imgs", "-1"]),
            (["--num-imgs", "0"], ["--num-imgs"]),
            (["--num-imgs", "1000000000000"], ["--num-imgs", "1000000"]),
            (["--batch-size", "0"], ["--batch-size"]),
            (["--batch-size", "-3"], ["--batch-size"]),
            (["--batch-size", "100000"], ["--batch-size", "256"]),
            (["--height", "100000"], ["--height", "4096"]),
            (["--height", "9223372036854775800"], ["--height"]),
            (["--width", "-8"], ["--width"]),
            (["--width", "100"], ["--width", "multiple of 8"]),
            (["--steps", "0"], ["--steps"]),
            (["--steps", "100000"], ["--steps", "1000"]),
            (["--cfg", "inf"], ["--cfg", "finite"]),
            (["--cfg", "nan"], ["--cfg", "finite"]),
            (["--cfg", "-inf"], ["--cfg", "finite"]),
            (["--seed", "18446744073709551615", "--num-imgs", "2"], ["--seed"]),
            (["--seed", "-1"], ["--seed"]),
        ]
        for (args, mentions) in cases {
            try MixDQCLI.fail(gen + args, mentioning: mentions)
            try MixDQCLI.fail(["infer", "--base-path", base.path, "--prompt", "cat"] + args, mentioning: mentions)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: base.path), "a rejected run created \(base.path)")
    }

    // MARK: Resume

    /// A 0-byte or cut-off `<i>.png` from a crash is not counted as done: the rerun makes it
    /// again (saying so), byte-identical to an uninterrupted run.
    func testResumeRegeneratesEmptyOrDamagedImages() throws {
        let dir = try MixDQCLI.tempDir("resume-png")
        let config = try MixDQCLI.writeConfig(in: dir)
        let base = dir.appendingPathComponent("out")
        try MixDQCLI.succeed(fpInfer(config: config, base: base, images: 3))
        let images = base.appendingPathComponent("generated_images")
        let original = try (0..<3).map { try Data(contentsOf: images.appendingPathComponent("\($0).png")) }
        try Data().write(to: images.appendingPathComponent("0.png"))
        try original[1].prefix(original[1].count / 2).write(to: images.appendingPathComponent("1.png"))
        let r = try MixDQCLI.succeed(fpInfer(config: config, base: base, images: 3))
        for i in 0..<3 {
            XCTAssertEqual(try Data(contentsOf: images.appendingPathComponent("\(i).png")), original[i], "image \(i)")
        }
        XCTAssertTrue(r.stderr.contains(images.appendingPathComponent("0.png").path) && r.stderr.contains("generated again"), r.stderr)
        XCTAssertTrue(r.stderr.contains(images.appendingPathComponent("1.png").path), r.stderr)
    }

    // MARK: Configs

    /// calib_data.path naming a folder fails at the start, naming the key and the path, and
    /// leaves no partial file; mixed_precision outside the original's widths is refused.
    func testConfigKeysThatCannotWorkFailAtTheStart() throws {
        let dir = try MixDQCLI.tempDir("config-start")
        let folder = dir.appendingPathComponent("calib.h5")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = try MixDQCLI.writeConfig(in: dir, calibPath: folder)
        let r = try MixDQCLI.fail(["calib-data", "--config", config.path], mentioning: [config.path, "calib_data.path", folder.path])
        XCTAssertFalse(r.stderr.contains("calibration batches"), "the error should come before any work:\n\(r.stderr)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["calib.h5", "config.yaml"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [])

        let good = try String(contentsOf: try MixDQCLI.writeConfig(in: try MixDQCLI.tempDir("config-good")), encoding: .utf8)
        let three = dir.appendingPathComponent("three.yaml")
        try good.replacingOccurrences(of: "mixed_precision: [2,4,8]", with: "mixed_precision: [3]")
            .write(to: three, atomically: true, encoding: .utf8)
        try MixDQCLI.fail(["ptq", "--config", three.path, "--outdir", dir.appendingPathComponent("ptq").path],
                          mentioning: [three.path, "mixed_precision", "3"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("ptq/ckpt.safetensors").path))
    }

    // MARK: Messages

    /// File errors say what is wrong in plain words, without Foundation's Cocoa error text.
    func testFileErrorsAreInPlainWords() throws {
        let dir = try MixDQCLI.tempDir("plain")
        let config = try MixDQCLI.writeConfig(in: dir)
        let notJSON = dir.appendingPathComponent("captions.json")
        try "not json {".write(to: notJSON, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["fp-infer", "--config", config.path, "--captions", notJSON.path, "--base-path", dir.appendingPathComponent("o").path,
              "--num-imgs", "2"], notJSON.path),
            (["fp-infer", "--config", dir.path, "--base-path", dir.appendingPathComponent("o").path], dir.path),
            (["fp-infer", "--config", config.path, "--captions", dir.path, "--base-path", dir.appendingPathComponent("o").path,
              "--num-imgs", "2"], dir.path),
        ]
        for (args, path) in cases {
            let r = try MixDQCLI.fail(args, mentioning: [path])
            XCTAssertFalse(r.errorLine.contains("NSCocoaErrorDomain") || r.errorLine.contains("The operation could not be completed")
                           || r.errorLine.contains("error 3840"), r.errorLine)
        }
    }
}
