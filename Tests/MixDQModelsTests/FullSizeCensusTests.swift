import Foundation
import XCTest
import MixDQCompute
import MixDQModels

/// Hands out uninitialised tensors (untouched pages cost no memory), counting parameters, so the
/// full-size SDXL-Turbo UNet can be built in a test to check its structure.
final class ShapeOnlyWeightSource: WeightSource {
    var parameters = 0
    func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        parameters += shape.reduce(1, *)
        return Tensor(uninitializedShape: shape)
    }
    func contains(_ key: String) -> Bool { true }
    func finish() throws {}
}

/// The real SDXL-Turbo UNet config builds the architecture MixDQ quantizes (mixdq-method.md §3.1,
/// sdxl-architecture.md §5.5): 794 sites, 9 split shortcuts, 140 BOS-aware K/V projections.
final class FullSizeCensusTests: XCTestCase {
    func testSDXLTurboUNetCensus() throws {
        let config = try UNetConfig.load(fixturesURL.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("configs/models/sdxl-turbo-unet.json"))
        let weights = ShapeOnlyWeightSource()
        let unet = try UNet2DConditionModel(config: config, weights: weights)
        XCTAssertEqual(weights.parameters, 2_567_463_684)
        XCTAssertEqual(unet.layers.count, 794)
        XCTAssertEqual(unet.layers.filter { $0 is Conv2d }.count, 51)
        XCTAssertEqual(unet.layers.filter { $0 is Linear }.count, 743)
        let splits = unet.layers.compactMap { l -> Int? in if case .concatShortcut(let s) = l.role { return s } else { return nil } }
        XCTAssertEqual(splits, [1280, 1280, 1280, 1280, 640, 640, 640, 320, 320])
        let kv = unet.layers.filter { $0.role == .crossAttentionKeyValue }
        XCTAssertEqual(kv.count, 140)
        XCTAssertTrue(kv.allSatisfy { $0.path.hasSuffix("attn2.to_k") || $0.path.hasSuffix("attn2.to_v") })
        XCTAssertEqual(unet.layers.filter { $0.path.contains("attn2") || $0.path.contains("ff") }.count, 420)
    }

    /// SD1.5's UNet (runwayml/stable-diffusion-v1-5 and DreamShaper-7 share it; configs/models/sd15-unet.json),
    /// and the LCM-distilled variant (time_cond_proj_dim 256, as LCM_Dreamshaper_v7): counts from diffusers 0.42.1
    /// on the meta device (parameters, Conv2d / Linear modules, attn2.to_k/to_v, up-block conv_shortcut inputs).
    func testSD15UNetCensus() throws {
        let source = fixturesURL.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("configs/models/sd15-unet.json")
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as? [String: Any])
        object["time_cond_proj_dim"] = 256
        let lcm = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-lcm-unet-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: object).write(to: lcm)
        defer { try? FileManager.default.removeItem(at: lcm) }
        for (url, parameters, linears) in [(source, 859_520_964, 184), (lcm, 859_602_884, 185)] {
            let weights = ShapeOnlyWeightSource()
            let unet = try UNet2DConditionModel(config: try UNetConfig.load(url), weights: weights)
            XCTAssertEqual(weights.parameters, parameters)
            XCTAssertEqual(unet.layers.filter { $0 is Conv2d }.count, 98)
            XCTAssertEqual(unet.layers.filter { $0 is Linear }.count, linears)
            let splits = unet.layers.compactMap { l -> Int? in if case .concatShortcut(let s) = l.role { return s } else { return nil } }
            XCTAssertEqual(splits, Array(repeating: 1280, count: 7) + [640, 640, 640, 320, 320])
            XCTAssertEqual(unet.layers.filter { $0.role == .crossAttentionKeyValue }.count, 32)
            XCTAssertEqual(unet.layers.filter { $0.path.contains("attn2") || $0.path.contains("ff") }.count, 96)
            XCTAssertEqual(unet.layers.contains { $0.path == "time_embedding.cond_proj" }, linears == 185)
        }
    }
}
