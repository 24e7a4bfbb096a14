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

    /// The tiny UNet's inputs the goldens' `unet_out` was computed on.
    func unetInputs() throws -> UNetInputs {
        let io = try SafetensorsFile(Self.fixtures.appendingPathComponent("unet_sdxl_tiny/io_b1.safetensors"))
        return UNetInputs(sample: try io.floatTensor("sample"), timesteps: try io.floatTensor("timestep").scalars,
                          encoderHiddenStates: try io.floatTensor("encoder_hidden_states"),
                          textEmbeds: try io.floatTensor("text_embeds"), timeIds: try io.floatTensor("time_ids"))
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
        let inputs = try unetInputs()
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

    /// An SDXL kohya LoRA in kohya's own SGM module names (input_blocks / middle_block /
    /// output_blocks, in_layers / emb_layers / skip_connection / op, time_embed, label_emb, out),
    /// 17 modules over every block kind, against diffusers' own SGM mapping.
    func testKohyaSGMNamesMatchDiffusers() throws {
        let lora = try LoRAWeights.load(Self.loraDir.appendingPathComponent("kohya_sgm.safetensors"), scale: 1)
        let golden = try SafetensorsFile(Self.loraDir.appendingPathComponent("fused_kohya_sgm.safetensors"))
        let config = try UNetConfig.load(folder("unet").appendingPathComponent("config.json"))
        let base = try SafetensorsWeightSource.open(folder: folder("unet"))
        let fused = lora.fused(.unet, into: base, modelName: "fixture", sgmNames: SGMModuleNames(config: config))
        var compared = 0
        for key in golden.keys where key.hasSuffix(".weight") {
            let weightKey = String(key.dropFirst("unet.".count))
            let want = try golden.floatTensor(key)
            XCTAssertGreaterThan(relativeError(try base.tensor(weightKey, shape: want.shape), want), 1e-3, "\(key): the LoRA changes this weight")
            XCTAssertLessThanOrEqual(relativeError(try fused.tensor(weightKey, shape: want.shape), want), 1e-6, key)
            compared += 1
        }
        XCTAssertEqual(compared, 17)
        let inputs = try unetInputs()
        let unet = try ModelFolder(folder("unet"), lora: lora).loadUNet()
        let error = relativeError(try unet(inputs), try golden.floatTensor("unet_out"))
        print(String(format: "kohya SGM LoRA: UNet output max-rel error vs diffusers %.3g", error))
        XCTAssertLessThanOrEqual(error, 1e-4)
    }

    /// The SGM names of the layout the fixture's LoRA uses, written out from the SGM UNet's numbering.
    func testSGMNamesOfEveryBlockKind() throws {
        let config = try UNetConfig.load(folder("unet").appendingPathComponent("config.json"))
        let names = SGMModuleNames(config: config)
        let expected = [
            "conv_in": "input_blocks.0.0", "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
            "conv_norm_out": "out.0", "conv_out": "out.2",
            "down_blocks.0.resnets.0.norm1": "input_blocks.1.0.in_layers.0", "down_blocks.0.resnets.1.conv2": "input_blocks.2.0.out_layers.3",
            "down_blocks.0.downsamplers.0.conv": "input_blocks.3.0.op",
            "down_blocks.1.resnets.0.conv_shortcut": "input_blocks.4.0.skip_connection",
            "down_blocks.1.attentions.1.transformer_blocks.0.attn2.to_out.0": "input_blocks.5.1.transformer_blocks.0.attn2.to_out.0",
            "down_blocks.1.downsamplers.0.conv": "input_blocks.6.0.op",
            "down_blocks.2.attentions.0.norm": "input_blocks.7.1.norm", "down_blocks.2.resnets.1.time_emb_proj": "input_blocks.8.0.emb_layers.1",
            "mid_block.resnets.0.conv1": "middle_block.0.in_layers.2", "mid_block.attentions.0.proj_out": "middle_block.1.proj_out",
            "mid_block.resnets.1.norm2": "middle_block.2.out_layers.0",
            "up_blocks.0.resnets.0.conv1": "output_blocks.0.0.in_layers.2", "up_blocks.0.attentions.2.proj_in": "output_blocks.2.1.proj_in",
            "up_blocks.0.upsamplers.0.conv": "output_blocks.2.2.conv", "up_blocks.1.resnets.1.conv_shortcut": "output_blocks.4.0.skip_connection",
            "up_blocks.1.upsamplers.0.conv": "output_blocks.5.2.conv", "up_blocks.2.resnets.2.conv2": "output_blocks.8.0.out_layers.3",
        ]
        for (path, sgm) in expected { XCTAssertEqual(names.sgmPath(path), sgm, path) }
        // Modules SGM does not have at these places: a third down resnet, an attention of a DownBlock2D,
        // the last level's downsampler / upsampler, a fourth mid module.
        for path in ["down_blocks.0.resnets.2.conv1", "down_blocks.0.attentions.0.proj_in", "down_blocks.2.downsamplers.0.conv",
                     "up_blocks.2.upsamplers.0.conv", "up_blocks.2.attentions.0.proj_in", "mid_block.resnets.2.conv1", "up_blocks.0.resnets.3.conv1",
                     "down_blocks.0.resnets.0.conv1.extra", "unknown.block.0.x"] {
            XCTAssertNil(names.sgmPath(path), path)
        }
    }
}
