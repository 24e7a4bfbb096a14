import Foundation
import XCTest

/// `mixdq quantize` and `infer --unet`/`--backend` through the CLI, on the flow workspace's checkpoint.
extension QuantFlowCLITests {
    func testQuantizedUNetGivesTheInt8BackendsImages() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("quantize")
        let unet = dir.appendingPathComponent("unet-w8a8")
        let q = try MixDQCLI.succeed(["quantize", "--config", w.config.path, "--ckpt", w.ptq.path, "--out", unet.path])
        XCTAssertTrue(q.stderr.contains("0.250x"), q.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: unet.appendingPathComponent("diffusion_pytorch_model.safetensors").path))

        let common = ["--base-path", w.ptq.path, "--num-imgs", "2", "--batch-size", "1"]
        let fromFile = try MixDQCLI.succeed(["infer", "--unet", unet.path, "--image-folder", dir.appendingPathComponent("a").path] + common)
        XCTAssertTrue(fromFile.stderr.contains("quantized UNet (deployable, int8)"), fromFile.stderr)
        let inMemory = try MixDQCLI.succeed(["infer", "--backend", "int8", "--image-folder", dir.appendingPathComponent("b").path] + common)
        XCTAssertTrue(inMemory.stderr.contains("backend: int8"), inMemory.stderr)
        for i in 0..<2 {
            let a = try Data(contentsOf: dir.appendingPathComponent("a/\(i).png")), b = try Data(contentsOf: dir.appendingPathComponent("b/\(i).png"))
            XCTAssertEqual(a, b, "image \(i): the deployable UNet and the in-memory INT8 UNet differ")
        }
        // fp-infer runs it too.
        _ = try MixDQCLI.succeed(["fp-infer", "--unet", unet.path, "--prompt", "a red bus", "--num-imgs", "1", "--batch-size", "1",
                                  "--base-path", dir.appendingPathComponent("fp").path])
    }

    func testQuantizeAndBackendErrorsAreClear() throws {
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("quantize-bad")
        let unet = dir.appendingPathComponent("unet")
        _ = try MixDQCLI.succeed(["quantize", "--config", w.config.path, "--ckpt", w.ptq.path, "--out", unet.path])
        let again = try MixDQCLI.run(["quantize", "--config", w.config.path, "--ckpt", w.ptq.path, "--out", unet.path])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains(unet.path) && again.stderr.contains("already exists"), again.stderr)

        let fake = try MixDQCLI.run(["infer", "--base-path", w.ptq.path, "--unet", unet.path, "--backend", "fake", "--num-imgs", "1",
                                     "--image-folder", dir.appendingPathComponent("x").path])
        XCTAssertNotEqual(fake.status, 0)
        XCTAssertTrue(fake.stderr.contains("already quantized"), fake.stderr)
        // Its integer kernels are built for the CPU: --backend cuda is refused, not silently ignored.
        let cuda = try MixDQCLI.run(["infer", "--base-path", w.ptq.path, "--unet", unet.path, "--backend", "cuda", "--num-imgs", "1",
                                     "--image-folder", dir.appendingPathComponent("y").path])
        XCTAssertNotEqual(cuda.status, 0)
        XCTAssertTrue(cuda.stderr.contains("already quantized") && cuda.stderr.contains("--backend fake|cuda"), cuda.stderr)

        // MixDQ's activation MP (4-bit activations) runs on int8; activations quantized over FP weights
        // have no integer path: --backend int8 refuses naming a layer, the default falls back to fake quant.
        let layers = try QuantFlowCLITests.layers(in: w.checkpoint)
        let weights = dir.appendingPathComponent("w.yaml"), acts = dir.appendingPathComponent("a.yaml")
        try QuantFlowCLITests.bitFile(layers, [:]).write(to: weights, atomically: true, encoding: .utf8)
        try QuantFlowCLITests.bitFile(layers, ["conv_out": 4, "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q": 4])
            .write(to: acts, atomically: true, encoding: .utf8)
        let mp = ["--config-weight-mp", weights.path, "--config-act-mp", acts.path]
        let a4 = try MixDQCLI.succeed(["infer", "--base-path", w.ptq.path, "--backend", "int8", "--num-imgs", "1", "--batch-size", "1",
                                       "--image-folder", dir.appendingPathComponent("y").path] + mp)
        XCTAssertTrue(a4.stderr.contains("activations 4-bit: 2, 8-bit:") && a4.stderr.contains("backend: int8"), a4.stderr)
        let noWeights = try MixDQCLI.run(["infer", "--base-path", w.ptq.path, "--backend", "int8", "--skip-quant-weight", "--num-imgs", "1",
                                          "--image-folder", dir.appendingPathComponent("v").path])
        XCTAssertNotEqual(noWeights.status, 0)
        XCTAssertTrue(noWeights.stderr.contains("conv_in") && noWeights.stderr.contains("--backend fake"), noWeights.stderr)
        let auto = try MixDQCLI.succeed(["infer", "--base-path", w.ptq.path, "--skip-quant-weight", "--num-imgs", "1", "--batch-size", "1",
                                         "--image-folder", dir.appendingPathComponent("z").path])
        XCTAssertTrue(auto.stderr.contains("backend: fake quant") && auto.stderr.contains("no int8 path"), auto.stderr)
    }
}
