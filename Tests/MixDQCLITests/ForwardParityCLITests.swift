import Foundation
import XCTest
import MixDQCompute
import MixDQIO

/// `mixdq forward <component>` on the committed fixtures reproduces diffusers / transformers
/// (the commands users run to check a model, and our end-to-end parity through the CLI).
final class ForwardParityCLITests: XCTestCase {
    func relativeError(_ got: Tensor, _ want: Tensor) -> Float {
        XCTAssertEqual(got.shape, want.shape)
        var maxAbs: Float = 0, ref: Float = 0
        for i in 0..<min(got.count, want.count) {
            maxAbs = max(maxAbs, abs(got.data[i] - want.data[i])); ref = max(ref, abs(want.data[i]))
        }
        return maxAbs / max(ref, 1e-30)
    }

    func check(_ command: [String], model: URL, input: URL, expect: [(String, String)]) throws {
        let out = try MixDQCLI.tempDir("fwd-parity").appendingPathComponent("out.safetensors")
        try MixDQCLI.succeed(["forward"] + command + ["--model", model.path, "--input", input.path, "--output", out.path])
        let got = try SafetensorsFile(out), want = try SafetensorsFile(input)
        for (ours, theirs) in expect {
            let rel = relativeError(try got.floatTensor(ours), try want.floatTensor(theirs))
            print(String(format: "forward %@ %@: rel %.2e", command.joined(separator: " ") as NSString, ours as NSString, rel))
            XCTAssertLessThanOrEqual(rel, 1e-4, "\(command) \(ours)")
        }
    }

    func testForwardUNetMatchesDiffusers() throws {
        let dir = MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny")
        try check(["unet"], model: dir, input: dir.appendingPathComponent("io_b1.safetensors"), expect: [("out", "out")])
        let sd15 = MixDQCLI.fixtures.appendingPathComponent("unet_sd15_tiny")
        try check(["unet"], model: sd15, input: sd15.appendingPathComponent("io.safetensors"), expect: [("out", "out")])
    }

    func testForwardTextEncodersMatchTransformers() throws {
        let dir = MixDQCLI.fixtures.appendingPathComponent("clip_tiny")
        try check(["text-encoder"], model: dir, input: dir.appendingPathComponent("io_te1.safetensors"),
                  expect: [("out", "hidden_states.2"), ("last_hidden_state", "last_hidden_state")])
        try check(["text-encoder-2"], model: dir, input: dir.appendingPathComponent("io_te2.safetensors"),
                  expect: [("out", "hidden_states.2"), ("text_embeds", "text_embeds")])
    }

    func testForwardVAEDecoderMatchesDiffusers() throws {
        let dir = MixDQCLI.fixtures.appendingPathComponent("vae_tiny")
        try check(["vae-decoder"], model: dir, input: dir.appendingPathComponent("io.safetensors"), expect: [("out", "out")])
    }
}
