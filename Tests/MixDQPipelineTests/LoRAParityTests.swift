import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// LoRA fusing against diffusers' `load_lora_weights` + `fuse_lora` on the tiny SDXL fixtures, for
/// the kohya (alpha 2·rank, scale 1), PEFT lora_A/lora_B (no alpha, scale 0.7) and lora.down/up
/// conventions (fixtures: scripts/reference/make_lora_fixtures.py): the fused weights and the UNet
/// and text-encoder outputs.
final class LoRAParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let loraDir = fixtures.appendingPathComponent("lora_tiny")
    static let scales: [String: Float] = ["kohya": 1.0, "peft": 0.7, "lora_down_up": 1.0]

    /// Max |got - want| relative to max |want|.
    func relativeError(_ got: Tensor, _ want: Tensor) -> Float {
        XCTAssertEqual(got.shape, want.shape)
        return PipelineFixtures.relativeError(got, want)
    }

    func lora(_ name: String) throws -> LoRAWeights {
        try LoRAWeights.load(Self.loraDir.appendingPathComponent("\(name).safetensors"), scale: Self.scales[name]!)
    }

    func folder(_ component: String) -> URL {
        Self.fixtures.appendingPathComponent(component == "unet" ? "unet_sdxl_tiny/unet" : "clip_tiny/\(component)")
    }

    func testFusedWeightsMatchDiffusers() throws {
        for name in Self.scales.keys.sorted() {
            let lora = try lora(name)
            let golden = try SafetensorsFile(Self.loraDir.appendingPathComponent("fused_\(name).safetensors"))
            var compared = 0
            for key in golden.keys where key.hasSuffix(".weight") {
                let component = LoRAComponent.allCases.first { key.hasPrefix($0.rawValue + ".") }!
                let weightKey = String(key.dropFirst(component.rawValue.count + 1))
                let base = try SafetensorsWeightSource.open(folder: folder(component.rawValue))
                let want = try golden.floatTensor(key)
                let fused = try lora.fused(component, into: base, modelName: "fixture").tensor(weightKey, shape: want.shape)
                let unfused = try base.tensor(weightKey, shape: want.shape)
                XCTAssertGreaterThan(relativeError(unfused, want), 1e-3, "\(name) \(key): the LoRA changes this weight")
                // One rounding of the sum against diffusers' separate product and add: fp32 rounding.
                XCTAssertLessThanOrEqual(relativeError(fused, want), 1e-6, "\(name) \(key)")
                compared += 1
            }
            XCTAssertEqual(compared, ["kohya": 9, "peft": 11, "lora_down_up": 7][name], name)
        }
    }

    func testUNetAndTextEncoderOutputsMatchDiffusers() throws {
        let io = try SafetensorsFile(Self.fixtures.appendingPathComponent("unet_sdxl_tiny/io_b1.safetensors"))
        let inputs = UNetInputs(sample: try io.floatTensor("sample"), timesteps: try io.floatTensor("timestep").scalars,
                                encoderHiddenStates: try io.floatTensor("encoder_hidden_states"),
                                textEmbeds: try io.floatTensor("text_embeds"), timeIds: try io.floatTensor("time_ids"))
        for name in ["kohya", "peft"] {
            let lora = try lora(name)
            let golden = try SafetensorsFile(Self.loraDir.appendingPathComponent("fused_\(name).safetensors"))
            let unet = try ModelFolder(folder("unet"), lora: lora).loadUNet()
            XCTAssertLessThanOrEqual(relativeError(try unet(inputs), try golden.floatTensor("unet_out")), 1e-4, "\(name) unet")
            for (component, ioName) in [("text_encoder", "io_te1"), ("text_encoder_2", "io_te2")] {
                let te = try ModelFolder(folder(component), lora: lora).loadTextEncoder(component)
                let ioFile = try SafetensorsFile(Self.fixtures.appendingPathComponent("clip_tiny/\(ioName).safetensors"))
                let ids = try CLIPTextModel.inputIDs(int64: try ioFile.rawBytes("input_ids"), shape: try ioFile.info("input_ids").shape)
                let out = try te.encode(ids: ids).lastHiddenState!
                XCTAssertLessThanOrEqual(relativeError(out, try golden.floatTensor("\(component)_out")), 1e-4, "\(name) \(component)")
            }
        }
    }
}
