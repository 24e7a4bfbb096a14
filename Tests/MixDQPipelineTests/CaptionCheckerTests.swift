import Foundation
import XCTest
import MixDQIO
import MixDQPipeline

/// The synthetic-shapes caption checker on images drawn by the data-set renderer with known
/// answers (Tests/Fixtures/synthetic_shapes, scripts/reference/make_shapes_fixtures.py).
final class CaptionCheckerTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("synthetic_shapes")

    struct Expected: Decodable {
        let images: Int
        let verdicts: [String: [[String: VerdictValue]]]
    }

    /// expected.json mixes booleans with a "changed" note.
    enum VerdictValue: Decodable {
        case flag(Bool), note(String)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b) } else { self = .note(try c.decode(String.self)) }
        }
    }

    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: dir.appendingPathComponent("expected.json")))
    }

    static func image(_ i: Int) throws -> RGBImage {
        try RGBImage.readPNG(dir.appendingPathComponent("images/\(i).png"))
    }

    static func captions(_ file: String) throws -> [String] {
        try CaptionList.load(dir.appendingPathComponent(file))
    }

    /// Checks every fixture image against `file`'s captions and compares each listed verdict.
    func assertVerdicts(_ file: String) throws {
        let expected = try Self.expected()
        let captions = try Self.captions(file)
        let verdicts = try XCTUnwrap(expected.verdicts[file])
        XCTAssertEqual(captions.count, expected.images)
        XCTAssertEqual(verdicts.count, expected.images)
        for (i, caption) in captions.enumerated() {
            let check = try CaptionChecker.check(try Self.image(i), against: try ShapeScene(caption: caption))
            for (key, value) in verdicts[i] {
                guard case let .flag(want) = value else { continue }
                let attribute = try XCTUnwrap(CaptionAccuracy.Attribute(rawValue: key), key)
                XCTAssertEqual(CaptionAccuracy.verdict(check, attribute), want,
                               "\(file) image \(i) '\(caption)' \(key); read: bg \(check.readBackground), \(check.objects.map(EvaluationReport.describe))")
            }
        }
    }

    func testGroundTruthCaptionsAreRightOnEveryAttribute() throws {
        try assertVerdicts("captions.txt")
    }

    func testOtherImagesCaptionsAreNeverAllRight() throws {
        try assertVerdicts("wrong_captions.txt")
    }

    /// background, size and shape fail alone; a wrong colour or cell fails the object's four
    /// attributes (the checker finds an object by its colour, at its cell).
    func testOneWrongAttributeFailsWhatTheRulesSay() throws {
        try assertVerdicts("one_wrong_captions.txt")
        let notes = try Self.expected().verdicts["one_wrong_captions.txt"]!.compactMap { entry -> String? in
            if case let .note(n)? = entry["changed"] { return n } else { return nil }
        }
        for attribute in ["background", "size", "shape", "colour", "position"] {
            XCTAssertTrue(notes.contains { $0.hasSuffix(attribute) }, "the fixtures should change \(attribute) at least once")
        }
    }

    /// Our templates rasterise like the renderer: an un-jittered object matches its own template
    /// (offset 0) pixel for pixel.
    func testTemplatesMatchTheRendererExactly() throws {
        let captions = try Self.captions("captions.txt")
        for i in 0..<6 {   // images 0-5 are drawn without jitter
            let check = try CaptionChecker.check(try Self.image(i), against: try ShapeScene(caption: captions[i]))
            for object in check.objects {
                XCTAssertEqual(object.bestTemplate?.iou, 1, "image \(i): \(EvaluationReport.describe(object))")
                XCTAssertEqual(object.colourShare, 1)
            }
        }
    }

    /// Image 0 is "a small yellow square at the bottom right, black background": worked out from
    /// the contract, the square spans 102 ± 9.46, so its colour centroid is exactly (102, 102).
    func testReadValuesOfAKnownImage() throws {
        let check = try CaptionChecker.check(try Self.image(0),
                                             against: try ShapeScene(caption: "a small yellow square at the bottom right, black background"))
        XCTAssertEqual(check.readBackground, .black)
        let object = try XCTUnwrap(check.objects.first)
        XCTAssertEqual(object.centroid?.x, 102)
        XCTAssertEqual(object.centroid?.y, 102)
        XCTAssertEqual(object.bestTemplate?.shape, .square)
        XCTAssertEqual(object.bestTemplate?.size, .small)
    }

    func testBlankImageFailsEveryObjectAttribute() throws {
        let gray = RGBImage(width: 128, height: 128, pixels: [UInt8](repeating: 128, count: 128 * 128 * 3))
        let check = try CaptionChecker.check(gray, against: try ShapeScene(caption: "a large red circle in the center, gray background"))
        XCTAssertTrue(check.background)
        XCTAssertEqual(check.objects.count, 1)
        XCTAssertFalse(check.colour || check.position || check.size || check.shape || check.all)
        XCTAssertNil(check.objects[0].centroid)
        XCTAssertNil(check.objects[0].bestTemplate)
    }

    func testNearestPaletteColour() {
        XCTAssertEqual(PaletteColour.nearest(r: 128, g: 128, b: 128), .gray)
        XCTAssertEqual(PaletteColour.nearest(r: 200, g: 60, b: 40), .red)
        XCTAssertEqual(PaletteColour.nearest(r: 0, g: 0, b: 0), .black)
        XCTAssertEqual(PaletteColour.nearest(r: 255, g: 255, b: 255), .white)
        XCTAssertEqual(PaletteColour.nearest(r: 250, g: 150, b: 0), .orange)
    }

    func testOtherImageSizesAreRejected() throws {
        let small = RGBImage(width: 64, height: 64, pixels: [UInt8](repeating: 0, count: 64 * 64 * 3))
        XCTAssertThrowsError(try CaptionChecker.check(small, against: try ShapeScene(caption: "a small red star at the top, gray background"))) {
            XCTAssertTrue("\($0.localizedDescription)".contains("64x64"), $0.localizedDescription)
        }
    }

    // MARK: Caption grammar

    func testParsesTheGrammar() throws {
        let scene = try ShapeScene(caption: "a large red circle on the left and a small blue star at the top right, gray background\n")
        XCTAssertEqual(scene.background, .gray)
        XCTAssertEqual(scene.objects, [
            .init(size: .large, colour: .red, shape: .circle, cell: try XCTUnwrap(GridCell(column: 0, row: 1))),
            .init(size: .small, colour: .blue, shape: .star, cell: try XCTUnwrap(GridCell(column: 2, row: 0))),
        ])
        for file in ["captions.txt", "wrong_captions.txt", "one_wrong_captions.txt"] {
            for caption in try Self.captions(file) {
                XCTAssertEqual(try ShapeScene(caption: caption).caption, caption, "round trip")
            }
        }
    }

    func testBadCaptionsAreErrorsNamingThem() {
        let bad = [
            "": "background",
            "a large red circle on the left": "background",
            "a large red circle on the left, red background": "background",
            "a large red circle on the left, pink background": "background",
            "a huge red circle on the left, gray background": "cannot read object",
            "a large pink circle on the left, gray background": "cannot read object",
            "a large gray circle on the left, white background": "cannot read object",
            "a large red hexagon on the left, gray background": "cannot read object",
            "a large red circle somewhere, gray background": "cannot read object",
            "one large red circle on the left, gray background": "cannot read object",
            "a large red circle  on the left, gray background": "cannot read object",
            "a large red circle on the left and, gray background": "cannot read object",
            "a large white circle on the left, white background": "background's colour",
            "a large red circle on the left and a small red star at the top, gray background": "distinct colours",
            "a large red circle on the left and a small blue star on the left, gray background": "distinct cells",
        ]
        for (caption, problem) in bad {
            XCTAssertThrowsError(try ShapeScene(caption: caption), caption) { error in
                let text = error.localizedDescription
                XCTAssertTrue(text.contains("caption \"\(caption)\""), text)
                XCTAssertTrue(text.contains(problem), "\(caption): \(text)")
            }
        }
    }
}
