import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels

/// fp32 parity of the UNet against diffusers (fixtures: scripts/reference/make_unet_fixtures.py).
final class UNetParityTests: XCTestCase {
    func runParity(_ name: String, sdxl: Bool) throws {
        let dir = fixturesURL.appendingPathComponent(name)
        let config = try UNetConfig.load(dir.appendingPathComponent("unet/config.json"))
        let weights = try SafetensorsWeightSource.open(folder: dir.appendingPathComponent("unet"))
        let unet = try UNet2DConditionModel(config: config, weights: weights)
        let io = try SafetensorsFile(dir.appendingPathComponent("io.safetensors"))
        let inputs = UNetInputs(sample: try io.floatTensor("sample"),
                                timesteps: try io.floatTensor("timestep").scalars,
                                encoderHiddenStates: try io.floatTensor("encoder_hidden_states"),
                                textEmbeds: sdxl ? try io.floatTensor("text_embeds") : nil,
                                timeIds: sdxl ? try io.floatTensor("time_ids") : nil)
        var traced: [String: Tensor] = [:]
        let out = try unet(inputs) { traced[$0] = $1.copy() }
        for key in io.keys.sorted() where traced[key] != nil {
            assertClose("\(name) \(key)", traced[key]!, try io.floatTensor(key), relTol: 1e-4)
        }
        XCTAssertGreaterThanOrEqual(traced.keys.filter { io.contains($0) }.count, sdxl ? 18 : 12, "intermediates compared")
        assertClose("\(name) out", out, try io.floatTensor("out"), relTol: 1e-4)
    }

    func testSDXLTinyMatchesDiffusers() throws { try runParity("unet_sdxl_tiny", sdxl: true) }
    func testSD15TinyMatchesDiffusers() throws { try runParity("unet_sd15_tiny", sdxl: false) }

    func testSDXLTinyLayerCensus() throws {
        let dir = fixturesURL.appendingPathComponent("unet_sdxl_tiny")
        let unet = try UNet2DConditionModel(config: try UNetConfig.load(dir.appendingPathComponent("unet/config.json")),
                                            weights: try SafetensorsWeightSource.open(folder: dir.appendingPathComponent("unet")))
        // Same topology as SDXL: 51 Conv2d; split shortcuts marked with the hidden-state width.
        let convs = unet.layers.compactMap { $0 as? Conv2d }
        XCTAssertEqual(convs.count, 51)
        let splits = convs.compactMap { c -> String? in
            if case .concatShortcut(let s) = c.role { return "\(c.path)=\(s)" } else { return nil }
        }
        XCTAssertEqual(splits, ["up_blocks.0.resnets.0.conv_shortcut=96", "up_blocks.0.resnets.1.conv_shortcut=96",
                                "up_blocks.0.resnets.2.conv_shortcut=96", "up_blocks.1.resnets.0.conv_shortcut=96",
                                "up_blocks.1.resnets.1.conv_shortcut=64", "up_blocks.1.resnets.2.conv_shortcut=64",
                                "up_blocks.2.resnets.0.conv_shortcut=64", "up_blocks.2.resnets.1.conv_shortcut=32",
                                "up_blocks.2.resnets.2.conv_shortcut=32"])
        let kv = unet.layers.filter { $0.role == .crossAttentionKeyValue }.map(\.path)
        XCTAssertTrue(kv.allSatisfy { $0.hasSuffix("attn2.to_k") || $0.hasSuffix("attn2.to_v") })
        XCTAssertEqual(kv.count, 2 * (2 * 1 + 2 * 2 + 2 + 3 * 2 + 3 * 1))
    }
}
