import Foundation
import XCTest
import MixDQIO
import MixDQPipeline

/// `ModelFolder.check(against:)`: what a config asks of the model (`model_type`, `adapter_id`) is
/// either what the folder is and this port does, or an error naming the config file and key.
final class ConfigModelCheckTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let sdxlFolder = ModelFolder(root.appendingPathComponent("Tests/Fixtures/unet_sdxl_tiny"))
    static let sd15Folder = ModelFolder(root.appendingPathComponent("Tests/Fixtures/unet_sd15_tiny"))

    func config(_ type: MixDQConfig.ModelType, adapter: String? = nil) throws -> MixDQConfig {
        var c = try MixDQConfig.load(Self.root.appendingPathComponent("configs/sdxl_turbo.yaml"))
        c.model.modelType = type
        c.model.adapterID = adapter
        return c
    }

    func assertConfigError(_ body: @autoclosure () throws -> Void, _ config: MixDQConfig, key: String, mentions: [String],
                           line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            guard let e = error as? ConfigError else { return XCTFail("\(type(of: error)): \(error)", line: line) }
            XCTAssertEqual(e.key, key, line: line)
            let m = e.localizedDescription
            for part in [config.sourceURL!.path] + mentions {
                XCTAssertTrue(m.contains(part), "'\(part)' missing from: \(m)", line: line)
            }
        }
    }

    func testModelTypeReadFromTheUNet() throws {
        XCTAssertEqual(try Self.sdxlFolder.modelType(), .sdxl)
        XCTAssertEqual(try Self.sd15Folder.modelType(), .sd)
    }

    func testMatchingSDXLConfigPasses() throws {
        XCTAssertNoThrow(try Self.sdxlFolder.check(against: try config(.sdxl)))
    }

    func testModelTypeMismatchEitherWayIsAnError() throws {
        let sd = try config(.sd)
        assertConfigError(try Self.sdxlFolder.check(against: sd), sd, key: "model.model_type",
                          mentions: ["'sd'", "SDXL", "model_type: 'sdxl'"])
        let sdxl = try config(.sdxl)
        assertConfigError(try Self.sd15Folder.check(against: sdxl), sdxl, key: "model.model_type",
                          mentions: ["'sdxl'", "SD1.x", "model_type: 'sd'"])
    }

    func testMatchingSDConfigPasses() throws {
        XCTAssertNoThrow(try Self.sd15Folder.check(against: try config(.sd)))
    }

    func testHubAdapterIdSaysWhatToPass() throws {
        let c = try config(.sdxl, adapter: "latent-consistency/lcm-lora-sdxl")
        assertConfigError(try Self.sdxlFolder.check(against: c), c, key: "model.adapter_id",
                          mentions: ["latent-consistency/lcm-lora-sdxl", "pytorch_lora_weights.safetensors"])
    }
}
