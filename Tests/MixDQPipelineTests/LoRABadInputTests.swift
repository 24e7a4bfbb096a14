import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// LoRA files that cannot be fused are errors naming the file and the keys or modules at fault,
/// one test per class of bad input; and the key conventions are read as the formats define them.
final class LoRABadInputTests: XCTestCase {
    static let unetFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/unet_sdxl_tiny")
    /// A linear layer of the fixture UNet: [out 64, in 64].
    static let module = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-lora-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ tensors: [(String, [Int])], name: String = "lora.safetensors") throws -> URL {
        let url = dir.appendingPathComponent(name)
        try SafetensorsWriter.write(tensors.map { ($0.0, Tensor(shape: $0.1, repeating: 0.01)) }, to: url)
        return url
    }

    func assertLoRAError(_ body: @autoclosure () throws -> Any, mentions: [String], line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            XCTAssertTrue(error is LoRAError, "\(type(of: error)): \(error)", line: line)
            let m = error.localizedDescription
            for part in mentions { XCTAssertTrue(m.contains(part), "'\(part)' missing from: \(m)", line: line) }
        }
    }

    func testKeyConventions() {
        let kohya = LoRAKey("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight")
        XCTAssertEqual(kohya?.component, .textEncoder2)
        XCTAssertEqual(kohya?.module, "text_model_encoder_layers_0_mlp_fc1")
        XCTAssertEqual(kohya?.isFlattened, true)
        XCTAssertEqual(LoRAKey("lora_te_text_model_x.alpha")?.component, .textEncoder, "SD1.5's single encoder")
        XCTAssertEqual(LoRAKey("lora_unet_a_b.lora_down.weight")?.role, .down)
        let peft = LoRAKey("text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight")
        XCTAssertEqual(peft?.component, .textEncoder2)
        XCTAssertEqual(peft?.module, "text_model.encoder.layers.0.self_attn.q_proj")
        XCTAssertEqual(peft?.role, .up)
        XCTAssertEqual(LoRAKey("unet.a.to_out.0.lora.down.weight")?.module, "a.to_out.0")
        XCTAssertEqual(LoRAKey("unet.a.alpha")?.role, .alpha)
        for bad in ["unet.a.hada_w1_a", "down_blocks.0.attn1.processor.to_q_lora.down.weight", "lora_unet_a.b.lora_up.weight",
                    "vae.a.lora_A.weight", "unet.lora_A.weight"] {
            XCTAssertNil(LoRAKey(bad), bad)
        }
        XCTAssertEqual(LoRAKey.flattened("down_blocks.0.attentions.1.to_out.0"), "down_blocks_0_attentions_1_to_out_0")
    }

    func testUnknownKeysAreListed() throws {
        let url = try write([("lora_unet_x.hada_w1_a", [2, 2]), ("unet.\(Self.module).lora_A.weight", [4, 64]),
                             ("unet.\(Self.module).lora_B.weight", [64, 4]), ("weird", [1])])
        assertLoRAError(try LoRAWeights.load(url, scale: 1), mentions: [url.path, "2 key(s)", "lora_unet_x.hada_w1_a", "weird"])
    }

    func testModuleWithoutUpOrDownNamesTheMissingKey() throws {
        let url = try write([("lora_unet_a_b.lora_down.weight", [4, 8]), ("lora_unet_a_b.alpha", [])])
        assertLoRAError(try LoRAWeights.load(url, scale: 1), mentions: [url.path, "lora_unet_a_b.lora_up.weight"])
        let peft = try write([("unet.x.lora_B.weight", [8, 4])], name: "peft.safetensors")
        assertLoRAError(try LoRAWeights.load(peft, scale: 1), mentions: [peft.path, "unet.x.lora_A.weight"])
    }

    func testBadAlphaIsNamed() throws {
        let url = try write([("unet.\(Self.module).lora_A.weight", [4, 64]), ("unet.\(Self.module).lora_B.weight", [64, 4]),
                             ("unet.\(Self.module).alpha", [2])])
        assertLoRAError(try LoRAWeights.load(url, scale: 1), mentions: [url.path, "unet.\(Self.module).alpha", "[2]"])
        let zero = dir.appendingPathComponent("zero.safetensors")
        try SafetensorsWriter.write([("unet.\(Self.module).lora_A.weight", Tensor(shape: [4, 64], repeating: 0.01)),
                                     ("unet.\(Self.module).lora_B.weight", Tensor(shape: [64, 4], repeating: 0.01)),
                                     ("unet.\(Self.module).alpha", Tensor(shape: [], repeating: 0))], to: zero)
        assertLoRAError(try LoRAWeights.load(zero, scale: 1), mentions: [zero.path, "alpha", "is 0.0"])
    }

    func testModulesTheModelDoesNotHaveAreListed() throws {
        let url = try write([("unet.\(Self.module).lora_A.weight", [4, 64]), ("unet.\(Self.module).lora_B.weight", [64, 4]),
                             // SGM numbering ends at input_blocks.8 in this 3-level UNet.
                             ("lora_unet_input_blocks_9_1_proj_in.lora_down.weight", [4, 64]),
                             ("lora_unet_input_blocks_9_1_proj_in.lora_up.weight", [64, 4])])
        let lora = try LoRAWeights.load(url, scale: 1)
        assertLoRAError(try ModelFolder(Self.unetFolder, lora: lora).loadUNet(),
                        mentions: [url.path, "unet", "1 LoRA module(s)", "input_blocks_9_1_proj_in"])
    }

    func testShapesThatDoNotFitNameTheModule() throws {
        let url = try write([("unet.\(Self.module).lora_A.weight", [4, 32]), ("unet.\(Self.module).lora_B.weight", [64, 4])])
        let lora = try LoRAWeights.load(url, scale: 1)
        assertLoRAError(try ModelFolder(Self.unetFolder, lora: lora).loadUNet(), mentions: [url.path, Self.module, "[4, 32]", "[64, 64]"])
    }

    func testFolderWithoutOneWeightsFile() throws {
        assertLoRAError(try LoRAWeights.load(dir, scale: 1), mentions: [dir.path, "pytorch_lora_weights.safetensors"])
        _ = try write([("unet.a.lora_A.weight", [1, 1])], name: "one.safetensors")
        _ = try write([("unet.a.lora_A.weight", [1, 1])], name: "two.safetensors")
        assertLoRAError(try LoRAWeights.load(dir, scale: 1), mentions: [dir.path])
        // diffusers' file name wins over the others.
        _ = try write([("unet.\(Self.module).lora_A.weight", [4, 64]), ("unet.\(Self.module).lora_B.weight", [64, 4])],
                      name: LoRAWeights.diffusersFileName)
        XCTAssertTrue(try LoRAWeights.load(dir, scale: 1).targets(.unet))
    }
}
