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

        // 4-bit activations have no integer path: quantize refuses naming the layer, infer --backend int8 too,
        // and the default backend falls back to fake quant saying why.
        let layers = try QuantFlowCLITests.layers(in: w.checkpoint)
        let weights = dir.appendingPathComponent("w.yaml"), acts = dir.appendingPathComponent("a.yaml")
        try QuantFlowCLITests.bitFile(layers, [:]).write(to: weights, atomically: true, encoding: .utf8)
        try QuantFlowCLITests.bitFile(layers, ["conv_out": 4]).write(to: acts, atomically: true, encoding: .utf8)
        let mp = ["--config-weight-mp", weights.path, "--config-act-mp", acts.path]
        let q4 = try MixDQCLI.run(["quantize", "--config", w.config.path, "--ckpt", w.ptq.path, "--out", dir.appendingPathComponent("u4").path] + mp)
        XCTAssertNotEqual(q4.status, 0)
        XCTAssertTrue(q4.stderr.contains("conv_out") && q4.stderr.contains("4-bit activations"), q4.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("u4").path), "no partial output")
        let i4 = try MixDQCLI.run(["infer", "--base-path", w.ptq.path, "--backend", "int8", "--num-imgs", "1",
                                   "--image-folder", dir.appendingPathComponent("y").path] + mp)
        XCTAssertNotEqual(i4.status, 0)
        XCTAssertTrue(i4.stderr.contains("conv_out") && i4.stderr.contains("--backend fake"), i4.stderr)
        let auto = try MixDQCLI.succeed(["infer", "--base-path", w.ptq.path, "--num-imgs", "1", "--batch-size", "1",
                                         "--image-folder", dir.appendingPathComponent("z").path] + mp)
        XCTAssertTrue(auto.stderr.contains("backend: fake quant") && auto.stderr.contains("conv_out"), auto.stderr)
    }
}
