import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels

/// Inputs that used to reach oneDNN or the kernels and trap there: empty UNet batches and maps,
/// and weights holding NaN or Inf. Each is an error naming the tensor (and, for weights, the file).
final class HardenedModelInputTests: XCTestCase {
    static let unetFolder = fixturesURL.appendingPathComponent("unet_sdxl_tiny/unet")

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-hardened-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    private func tinyUNet() throws -> UNet2DConditionModel {
        try UNet2DConditionModel(config: try UNetConfig.load(Self.unetFolder.appendingPathComponent("config.json")),
                                 weights: try SafetensorsWeightSource.open(folder: Self.unetFolder))
    }

    /// SDXL tiny fixture: 4 latent channels, cross-attention 80, pooled text 40, 6 time ids.
    private func inputs(batch b: Int = 1, size: (Int, Int) = (16, 16), tokens: Int = 77) -> UNetInputs {
        UNetInputs(sample: Tensor(zeros: [b, 4, size.0, size.1]), timesteps: [999],
                   encoderHiddenStates: Tensor(zeros: [b, tokens, 80]), textEmbeds: Tensor(zeros: [b, 40]),
                   timeIds: Tensor(shape: [b, 6], repeating: 64))
    }

    func testEmptyBatchMapOrContextIsAnInputError() throws {
        let unet = try tinyUNet()
        XCTAssertNoThrow(try unet.validate(inputs()))
        let cases: [(String, UNetInputs, String)] = [
            ("batch 0", inputs(batch: 0), "'sample'"),
            ("height 0", inputs(size: (0, 16)), "'sample'"),
            ("width 0", inputs(size: (16, 0)), "'sample'"),
            ("no tokens", inputs(tokens: 0), "'encoder_hidden_states'"),
        ]
        for (label, x, tensor) in cases {
            XCTAssertThrowsError(try unet(x), label) { error in
                XCTAssertTrue(error is UNetInputError, "\(label): \(error)")
                XCTAssertTrue(error.localizedDescription.contains(tensor), "\(label): \(error.localizedDescription)")
            }
        }
    }

    /// Copies a component folder with one tensor's value at `index` replaced.
    private func damagedCopy(of folder: URL, weights name: String, key: String, index: Int, value: Float) throws -> (URL, URL) {
        let dir = try temporaryDirectory().appendingPathComponent(folder.lastPathComponent)
        try FileManager.default.copyItem(at: folder, to: dir)
        let url = dir.appendingPathComponent(name)
        let file = try SafetensorsFile(url)
        var tensors: [(String, Tensor)] = []
        for k in file.keys {
            let t = try file.floatTensor(k, copy: true)
            if k == key { t.data[index] = value }
            tensors.append((k, t))
        }
        try SafetensorsWriter.write(tensors, to: url)
        return (dir, url)
    }

    func testInfWeightInTheUNetNamesTensorAndFile() throws {
        let key = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"
        let (folder, weights) = try damagedCopy(of: Self.unetFolder, weights: "diffusion_pytorch_model.safetensors",
                                                key: key, index: 5, value: .infinity)
        XCTAssertThrowsError(try UNet2DConditionModel(config: try UNetConfig.load(folder.appendingPathComponent("config.json")),
                                                      weights: try SafetensorsWeightSource.open(folder: folder))) { error in
            let message = error.localizedDescription
            XCTAssertTrue(message.contains(weights.path) && message.contains("'\(key)'") && message.contains("index 5"), message)
        }
    }

    /// Through the VAE's key-translating source too.
    func testNaNWeightInTheVAENamesTensorAndFile() throws {
        let vae = fixturesURL.appendingPathComponent("vae_tiny/vae")
        let key = "decoder.conv_out.bias"
        let (folder, weights) = try damagedCopy(of: vae, weights: "diffusion_pytorch_model.safetensors", key: key, index: 1, value: .nan)
        XCTAssertThrowsError(try AutoencoderKLDecoder(config: try VAEConfig.load(folder.appendingPathComponent("config.json")),
                                                      weights: try SafetensorsWeightSource.open(folder: folder))) { error in
            let message = error.localizedDescription
            XCTAssertTrue(message.contains(weights.path) && message.contains("'\(key)'"), message)
        }
    }
}
