import Foundation
import XCTest

/// `mixdq default-model`: the trained model by default, the random one with --random, and
/// MIXDQ_DEFAULT_MODEL choosing what commands without --model use.
final class DefaultModelCLITests: XCTestCase {
    func stamp(_ folder: URL) throws -> String {
        try String(contentsOf: folder.appendingPathComponent("MIXDQ_DEFAULT_MODEL"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testWritesTheTrainedModelByDefaultAndTheRandomOneOnRequest() throws {
        let dir = try MixDQCLI.tempDir("dm-kinds")
        let trained = dir.appendingPathComponent("trained"), random = dir.appendingPathComponent("random")
        let r = try MixDQCLI.succeed(["default-model", "--output", trained.path])
        let label = try stamp(trained)
        XCTAssertTrue(label.hasPrefix("trained-tiny-sdxl-"), label)
        XCTAssertTrue(r.stdout.contains(label) && r.stdout.contains("(trained)"), r.stdout)
        // The shipped fp16 weights, copied as they are; the tokenizers written from assets/clip-bpe.
        let shipped = MixDQCLI.packageRoot.appendingPathComponent("assets/trained-tiny-sdxl/unet/diffusion_pytorch_model.safetensors")
        XCTAssertEqual(MixDQCLI.bytes(trained.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")), MixDQCLI.bytes(shipped))
        XCTAssertEqual(MixDQCLI.bytes(trained.appendingPathComponent("tokenizer_2/vocab.json")),
                       MixDQCLI.bytes(MixDQCLI.packageRoot.appendingPathComponent("assets/clip-bpe/vocab.json")))

        try MixDQCLI.succeed(["default-model", "--random", "--output", random.path])
        XCTAssertEqual(try stamp(random), "tiny-sdxl-v1")
        XCTAssertNotEqual(MixDQCLI.bytes(random.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")),
                          MixDQCLI.bytes(shipped))
        // Either kind's folder may replace the other (both are ours).
        try MixDQCLI.succeed(["default-model", "--random", "--output", trained.path])
        XCTAssertEqual(try stamp(trained), "tiny-sdxl-v1")
    }

    func testConflictingFlagsAndUnknownKindAreRefused() throws {
        let dir = try MixDQCLI.tempDir("dm-bad")
        try MixDQCLI.fail(["default-model", "--random", "--full-size-random", "--output", dir.appendingPathComponent("m").path],
                          mentioning: ["--random", "--full-size-random"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("m").path))
        let config = try MixDQCLI.writeConfig(in: dir)
        try MixDQCLI.fail(["fp-infer", "--config", config.path, "--base-path", dir.appendingPathComponent("out").path,
                           "--num-imgs", "1", "--prompt", "a red circle"],
                          mentioning: ["MIXDQ_DEFAULT_MODEL", "banana"], environment: ["MIXDQ_DEFAULT_MODEL": "banana"])
    }

    /// Without --model, MIXDQ_DEFAULT_MODEL=trained makes fp-infer use the trained model.
    func testCommandsWithoutModelUseTheChosenKind() throws {
        let dir = try MixDQCLI.tempDir("dm-env")
        let config = try MixDQCLI.writeConfig(in: dir)
        let cache = dir.appendingPathComponent("cache")
        let base = dir.appendingPathComponent("out")
        try MixDQCLI.succeed(["fp-infer", "--config", config.path, "--base-path", base.path, "--num-imgs", "1",
                              "--prompt", "a large red circle in the center, white background", "--steps", "1"],
                             environment: ["MIXDQ_DEFAULT_MODEL": "trained", "MIXDQ_CACHE": cache.path])
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache.path).filter { !$0.hasPrefix(".") }
        XCTAssertEqual(entries.count, 1, "\(entries)")
        XCTAssertTrue(entries.first?.hasPrefix("trained-tiny-sdxl-") ?? false, "\(entries)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: base.appendingPathComponent("generated_images/0.png").path))
    }
}
