import Foundation
import MixDQIO
import XCTest

private let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let cocoFixtures = repoRoot.appendingPathComponent("Tests/Fixtures/coco")

final class COCOCaptionsTests: XCTestCase {
    func testFirstCaptionPerImageInAnnotationOrder() throws {
        let captions = try COCOCaptions.load(cocoFixtures.appendingPathComponent("captions_small.json"))
        XCTAssertEqual(captions, ["A dog on a couch.", "A red car parked by the road.", "Un café crème sur une table ☕"])
    }

    func testShippedDefaultCaptions() throws {
        let url = repoRoot.appendingPathComponent("assets/coco/captions_mixdq_default.json")
        let captions = try COCOCaptions.load(url)
        XCTAssertEqual(captions.count, 39)
        XCTAssertGreaterThanOrEqual(captions.count, 32, "enough for the default 32 calibration prompts")
        XCTAssertEqual(captions.first, "A man riding a bicycle down a city street next to parked cars.")
        XCTAssertEqual(captions[1], "Two dogs playing with a red frisbee on a grassy field.")
        XCTAssertEqual(Set(captions).count, captions.count)
        XCTAssertFalse(captions.contains("A cyclist in a blue jacket pedals along a busy road."), "a second caption of image 503")
    }

    func testErrorsNameFileAndProblem() {
        let cases: [(String, [String])] = [
            ("not_json.json", ["not valid JSON"]),
            ("no_annotations.json", ["\"annotations\""]),
            ("captions_missing_caption.json", ["annotations[1]", "caption", "image_id 2"]),
            ("does_not_exist.json", ["cannot read"]),
        ]
        for (name, parts) in cases {
            let url = cocoFixtures.appendingPathComponent(name)
            XCTAssertThrowsError(try COCOCaptions.load(url), name) { error in
                XCTAssertTrue(error is COCOCaptionsError)
                let text = "\(error)"
                for part in parts + [url.path] {
                    XCTAssertTrue(text.contains(part), "'\(part)' missing from: \(text)")
                }
            }
        }
    }

    func testMissingImageIDAndNonObjects() {
        XCTAssertThrowsError(try COCOCaptions.parse(Data(#"{"annotations": [{"caption": "x"}]}"#.utf8), path: "mem.json")) { error in
            XCTAssertTrue("\(error)".contains("annotations[0]") && "\(error)".contains("image_id"), "\(error)")
        }
        XCTAssertThrowsError(try COCOCaptions.parse(Data(#"{"annotations": [3]}"#.utf8), path: "mem.json")) { error in
            XCTAssertTrue("\(error)".contains("not an object"), "\(error)")
        }
        XCTAssertThrowsError(try COCOCaptions.parse(Data("[1, 2]".utf8), path: "mem.json")) { error in
            XCTAssertTrue("\(error)".contains("mem.json"), "\(error)")
        }
        XCTAssertEqual(try COCOCaptions.parse(Data(#"{"annotations": []}"#.utf8), path: "m"), [])
    }
}
