import Foundation
import XCTest
import MixDQQuant

/// `ActProtection` (mixdq-method.md §6.4; issue 9 item 2) on the committed hand-written score files
/// `Tests/Fixtures/search/act_sensitivity_{content,quality}.yaml`, whose lowest scores per bit width
/// are worked out in their comments; every class of bad input with its message.
final class ActProtectionTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/search")
    var contentURL: URL { Self.fixtures.appendingPathComponent("act_sensitivity_content.yaml") }
    var qualityURL: URL { Self.fixtures.appendingPathComponent("act_sensitivity_quality.yaml") }

    func request(content: Int = 5, quality: Int = 4, bits: Int = 8, modelLayers: [String]? = nil) throws -> ActProtection.Request {
        ActProtection.Request(content: try SensitivityScores.load(contentURL, columns: [2, 4, 8]),
                              quality: try SensitivityScores.load(qualityURL, columns: [2, 4, 8]),
                              contentCount: content, qualityCount: quality, bits: bits, modelLayers: modelLayers, modelSource: "model.txt")
    }

    func expectError(_ body: () throws -> Void, mentioning parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("expected an error mentioning \(parts)", file: file, line: line)
        } catch {
            let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            for p in parts { XCTAssertTrue(text.contains(p), "'\(text)' should mention '\(p)'", file: file, line: line) }
        }
    }

    func testLowestEightBitScoresOfEachGroupContentFirst() throws {
        let choices = try ActProtection.select(try request())
        XCTAssertEqual(choices.map(\.path), [
            "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2",           // 0.9900
            "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",         // 0.9950
            "up_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0",       // 0.9960
            "down_blocks.2.attentions.0.transformer_blocks.1.attn2.to_v",         // 0.9970, first in the file
            "down_blocks.2.attentions.0.transformer_blocks.2.ff.net.0.proj",      // 0.9970
            "conv_out",                                                           // 50.12 dB
            "up_blocks.2.resnets.2.conv_shortcut",                                // 52.0
            "down_blocks.0.resnets.0.conv2",                                      // 55.5
            "conv_in",                                                            // 59.26
        ])
        XCTAssertEqual(choices.map(\.score), [0.9900, 0.9950, 0.9960, 0.9970, 0.9970, 50.12, 52.0, 55.5, 59.26])
        XCTAssertEqual(choices.map(\.group), Array(repeating: LayerGroup.content, count: 5) + Array(repeating: LayerGroup.quality, count: 4))
        // conv_in's 0.30 in the content file and attn2.to_q's 3 dB in the quality file belong to the other group.
        XCTAssertFalse(choices.contains { $0.path == "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q" })
    }

    func testTiesKeepFileOrderAndOtherBitWidthsRankByTheirColumn() throws {
        // Four content layers: the 0.9970 tie is broken by file order (to_v, not ff.net.0.proj).
        XCTAssertEqual(try ActProtection.select(try request(content: 4, quality: 0)).last?.path,
                       "down_blocks.2.attentions.0.transformer_blocks.1.attn2.to_v")
        XCTAssertEqual(try ActProtection.select(try request(content: 1, quality: 1, bits: 4)).map(\.path),
                       ["up_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0", "conv_out"])
        XCTAssertEqual(try ActProtection.select(try request(content: 1, quality: 2, bits: 2)).map(\.path),
                       ["down_blocks.2.attentions.0.transformer_blocks.2.ff.net.0.proj", "conv_out", "conv_in"])
    }

    func testListIsTheYAMLListInferReads() throws {
        let choices = try ActProtection.select(try request(content: 2, quality: 1))
        let text = ActProtection.yaml(choices)
        XCTAssertEqual(text, """
            - model.down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2
            - model.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k
            - model.conv_out

            """)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("protect-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: url) }
        try text.write(to: url, atomically: true, encoding: .utf8)
        XCTAssertEqual(try BitConfig.loadLayerList(url), choices.map(\.path))
    }

    func testMissingBitColumnNamesTheFile() throws {
        expectError({ _ = try ActProtection.select(try self.request(bits: 16)) },
                    mentioning: ["act_sensitivity_content.yaml", "no score column for 16 bits", "2, 4, 8"])
        // A file whose rows have fewer columns than the bit list says.
        expectError({ _ = try SensitivityScores.load(self.contentURL, columns: [2, 4, 8, 16]) },
                    mentioning: ["act_sensitivity_content.yaml", "3 score(s), expected 4"])
    }

    func testFewerLayersThanAskedNamesFileAndCount() throws {
        expectError({ _ = try ActProtection.select(try self.request(content: 8)) },
                    mentioning: ["act_sensitivity_content.yaml", "--content 8", "only 7"])
        expectError({ _ = try ActProtection.select(try self.request(quality: 7)) },
                    mentioning: ["act_sensitivity_quality.yaml", "--quality 7", "only 6"])
        expectError({ _ = try ActProtection.select(try self.request(content: 0, quality: 0)) }, mentioning: ["at least one layer"])
    }

    func testLayersUnknownToTheModelAreNamed() throws {
        let content = try SensitivityScores.load(contentURL, columns: [2, 4, 8])
        let quality = try SensitivityScores.load(qualityURL, columns: [2, 4, 8])
        let all = content.layers + quality.layers
        XCTAssertNoThrow(try ActProtection.select(try request(modelLayers: all)))
        let missing = "down_blocks.0.resnets.0.conv2"
        expectError({ _ = try ActProtection.select(try self.request(modelLayers: all.filter { $0 != missing })) },
                    mentioning: ["act_sensitivity_quality.yaml", "1 layer(s) unknown to model.txt", missing])
    }

    func testSwappedFilesAreCaughtBySSIMRange() throws {
        let r = ActProtection.Request(content: try SensitivityScores.load(qualityURL, columns: [2, 4, 8]),
                                      quality: try SensitivityScores.load(contentURL, columns: [2, 4, 8]))
        expectError({ _ = try ActProtection.select(r) },
                    mentioning: ["act_sensitivity_quality.yaml", "attn2.to_q", "outside SSIM's range"])
    }
}
