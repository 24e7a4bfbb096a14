import Foundation
import XCTest
import MixDQPipeline

/// `ModelFolder.component`: a pipeline folder's `<name>/`, or the folder itself when its
/// config.json is of that component's kind (whatever the folder is called).
final class ModelFolderTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    func testComponentFoundBothWaysForEveryKind() throws {
        for (fixture, name) in [("unet_sdxl_tiny", "unet"), ("vae_tiny", "vae"), ("clip_tiny", "text_encoder"),
                                ("clip_tiny", "text_encoder_2")] {
            let pipeline = Self.fixtures.appendingPathComponent(fixture)
            let own = pipeline.appendingPathComponent(name)
            XCTAssertEqual(try ModelFolder(pipeline).component(name).standardizedFileURL, own.standardizedFileURL, name)
            XCTAssertEqual(try ModelFolder(own).component(name).standardizedFileURL, own.standardizedFileURL, name)
        }
        // Loaders go through the same lookup: the UNet loads from its own folder.
        XCTAssertNoThrow(try ModelFolder(Self.fixtures.appendingPathComponent("unet_sdxl_tiny/unet")).loadUNet())
        XCTAssertNoThrow(try ModelFolder(Self.fixtures.appendingPathComponent("clip_tiny/text_encoder_2")).loadTextEncoder("text_encoder_2"))
    }

    func testFolderOfAnotherKindOrWithoutConfigIsNamed() throws {
        let te2 = Self.fixtures.appendingPathComponent("clip_tiny/text_encoder_2")
        XCTAssertThrowsError(try ModelFolder(te2).component("text_encoder")) { error in
            let m = error.localizedDescription
            XCTAssertTrue(m.contains(te2.path) && m.contains("CLIPTextModelWithProjection") && m.contains("'text_encoder'"), m)
        }
        // A pipeline command given one component's folder says which component is missing.
        let unet = Self.fixtures.appendingPathComponent("unet_sdxl_tiny/unet")
        XCTAssertThrowsError(try TextToImagePipeline(folder: ModelFolder(unet))) { error in
            let m = error.localizedDescription
            XCTAssertTrue(m.contains(unet.path) && m.contains("'vae'"), m)
        }
        let fixtures = Self.fixtures
        XCTAssertThrowsError(try ModelFolder(fixtures).component("unet")) { error in
            let m = error.localizedDescription
            XCTAssertTrue(m.contains(fixtures.path) && m.contains("'unet'"), m)
        }
    }
}
