import Foundation
import MixDQQuant
import XCTest

/// `BitConfig.loadLayerList` (every --act-protect / --exclude) reads the YAML list and the original's
/// torch.save'd `.pt`, chosen by content; `model.` prefixes are stripped in both.
/// Fixtures: scripts/reference/make_original_artefact_fixtures.py.
final class LayerListFormatsTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/original")

    func testTorchListReadsWithoutModelPrefix() throws {
        let url = Self.fixtures.appendingPathComponent("act_sensitivie_a8_1%.pt")
        let saved = try JSONDecoder().decode([String].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("act_sensitivie_a8_1%.json")))
        let names = try BitConfig.loadLayerList(url)
        XCTAssertEqual(names, saved.map { String($0.dropFirst("model.".count)) })
        XCTAssertTrue(names.contains("conv_in") && names.contains("up_blocks.2.resnets.2.conv_shortcut"), "\(names)")
    }

    func testTinyListIsTheSameInBothFormats() throws {
        let pt = try BitConfig.loadLayerList(Self.fixtures.appendingPathComponent("act_protect_tiny.pt"))
        let yaml = try BitConfig.loadLayerList(Self.fixtures.appendingPathComponent("act_protect_tiny.yaml"))
        XCTAssertEqual(pt, yaml)
        XCTAssertEqual(pt.count, 5)
    }

    /// The content decides: a torch file renamed .yaml still reads as one; a .pt that is text is an error.
    func testFormatFollowsContentNotExtension() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("layer-lists-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let renamed = dir.appendingPathComponent("protect.yaml")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("act_protect_tiny.pt"), to: renamed)
        XCTAssertEqual(try BitConfig.loadLayerList(renamed), try BitConfig.loadLayerList(Self.fixtures.appendingPathComponent("act_protect_tiny.yaml")))
        let text = dir.appendingPathComponent("protect.pt")
        try "- model.conv_in\n".write(to: text, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BitConfig.loadLayerList(text)) { error in
            XCTAssertTrue("\(error)".contains(text.path) && "\(error)".contains("not a zip archive"), "\(error)")
        }
        let dict = Self.fixtures.appendingPathComponent("hostile/dict.pt")
        XCTAssertThrowsError(try BitConfig.loadLayerList(dict)) { error in
            XCTAssertTrue("\(error)".contains(dict.path) && "\(error)".contains("holds a dict"), "\(error)")
        }
    }
}
