import Foundation
import MixDQCompute
import MixDQIO
import MixDQPipeline
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

    /// `--precision bf16` on the int8 backend: every A16 / FP layer of the UNet runs oneDNN bf16 (here
    /// W8A16: every layer; the text encoders stay fp32 for BOS-aware K/V's exact token-0 match). Its images must be as close to the fp32 int8 run's as the
    /// FP model's bf16 images are to its fp32 ones (`fp-infer`, the tested bf16 engine), within 3 dB,
    /// and not equal to them (bf16 really ran); the deployable W8A16 UNet loaded with --precision bf16
    /// gives the in-memory backend's images bit for bit. Fake quant and CUDA refuse bf16.
    func testInferBF16RunsTheFloatLayersInBF16() throws {
        guard Precision.bf16.isAvailable else { throw XCTSkip("no oneDNN bf16 kernels on this CPU (\(CPUInfo.current.summary))") }
        let w = try workspace()
        let dir = try MixDQCLI.tempDir("infer-bf16")
        let common = ["--base-path", w.ptq.path, "--num-imgs", "2", "--batch-size", "1"]
        func images(_ name: String) throws -> [RGBImage] {
            try (0..<2).map { try RGBImage.readPNG(dir.appendingPathComponent("\(name)/\($0).png")) }
        }
        func worstPSNR(_ a: [RGBImage], _ b: [RGBImage]) throws -> Double {
            try zip(a, b).map { try ImageMetrics.psnr($0, $1) }.min() ?? 0
        }
        let bf16 = try MixDQCLI.succeed(["infer", "--backend", "int8", "--skip-quant-act", "--precision", "bf16",
                                         "--image-folder", dir.appendingPathComponent("int8-bf16").path] + common)
        XCTAssertTrue(bf16.stderr.contains("A16 and FP layers in bf16"), bf16.stderr)
        _ = try MixDQCLI.succeed(["infer", "--backend", "int8", "--skip-quant-act",
                                  "--image-folder", dir.appendingPathComponent("int8-fp32").path] + common)
        for precision in ["fp32", "bf16"] {
            _ = try MixDQCLI.succeed(["fp-infer", "--config", w.config.path, "--base-path", dir.appendingPathComponent("fp-\(precision)").path,
                                      "--num-imgs", "2", "--batch-size", "1", "--precision", precision])
        }
        let quantized = try worstPSNR(images("int8-bf16"), images("int8-fp32"))
        let fp = try worstPSNR(images("fp-bf16/generated_images"), images("fp-fp32/generated_images"))
        print(String(format: "W8A16 int8 backend, bf16 vs fp32 float layers: worst PSNR %.2f dB (FP model bf16 vs fp32: %.2f dB)", quantized, fp))
        XCTAssertTrue(quantized.isFinite, "bf16 images equal the fp32 ones: bf16 did not run")
        XCTAssertGreaterThanOrEqual(quantized, fp - 3)

        let unet = dir.appendingPathComponent("unet-w8a16")
        _ = try MixDQCLI.succeed(["quantize", "--config", w.config.path, "--ckpt", w.ptq.path, "--skip-quant-act", "--out", unet.path])
        let deployed = try MixDQCLI.succeed(["infer", "--unet", unet.path, "--precision", "bf16",
                                             "--image-folder", dir.appendingPathComponent("deployed-bf16").path] + common)
        XCTAssertTrue(deployed.stderr.contains("quantized UNet (deployable, int8; A16 and FP layers in bf16)"), deployed.stderr)
        for i in 0..<2 {
            let a = try Data(contentsOf: dir.appendingPathComponent("deployed-bf16/\(i).png"))
            let b = try Data(contentsOf: dir.appendingPathComponent("int8-bf16/\(i).png"))
            XCTAssertEqual(a, b, "image \(i): the deployable W8A16 UNet in bf16 and the in-memory one differ")
        }
        // fp-infer takes it too: its text encoders stay fp32 beside a deployable UNet (BOS table).
        _ = try MixDQCLI.succeed(["fp-infer", "--unet", unet.path, "--precision", "bf16", "--prompt", "a red bus", "--num-imgs", "1",
                                  "--batch-size", "1", "--base-path", dir.appendingPathComponent("fp").path])
        for backend in ["fake", "cuda"] {
            try MixDQCLI.fail(["infer", "--backend", backend, "--precision", "bf16", "--image-folder", dir.appendingPathComponent("x").path] + common,
                              mentioning: ["--precision bf16", "--backend int8", "--backend \(backend)"])
        }
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
