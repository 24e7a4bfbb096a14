import Foundation
import XCTest
import MixDQIO
import MixDQPipeline

/// `ImageEvaluation` (what `mixdq eval` runs): folders, captions files, the table and the CSV.
final class ImageEvaluationTests: XCTestCase {
    static let shapes = CaptionCheckerTests.dir
    static let images = shapes.appendingPathComponent("images")

    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-eval-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    func folder(_ name: String, copying files: [String] = []) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for file in files {
            try FileManager.default.copyItem(at: Self.images.appendingPathComponent(file), to: url.appendingPathComponent(file))
        }
        return url
    }

    func write(_ text: String, _ name: String) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func testCaptionAccuracyOverTheFixtures() throws {
        let truth = try ImageEvaluation(images: Self.images, reference: nil, captions: Self.shapes.appendingPathComponent("captions.txt")).run()
        XCTAssertEqual(truth.rows.map(\.name), (0..<8).map { "\($0).png" })
        for attribute in CaptionAccuracy.Attribute.allCases {
            XCTAssertEqual(truth.accuracy.accuracy(attribute), 1, attribute.rawValue)
        }
        let wrong = try ImageEvaluation(images: Self.images, reference: nil, captions: Self.shapes.appendingPathComponent("wrong_captions.txt")).run()
        XCTAssertEqual(wrong.accuracy.accuracy(.all), 0)

        // One change per image (expected.json): background changed in images 0 and 5; size in 1, 6;
        // shape in 2, 7; colour in 3; position in 4 (the last two fail colour, position, size, shape).
        let one = try ImageEvaluation(images: Self.images, reference: nil, captions: Self.shapes.appendingPathComponent("one_wrong_captions.txt")).run()
        let accuracy = one.accuracy
        XCTAssertEqual(accuracy.images, 8)
        XCTAssertEqual(accuracy.right[.all, default: 0], 0)
        XCTAssertEqual(accuracy.right[.background, default: 0], 6)
        XCTAssertEqual(accuracy.right[.size, default: 0], 4)
        XCTAssertEqual(accuracy.right[.shape, default: 0], 4)
        XCTAssertEqual(accuracy.right[.colour, default: 0], 6)
        XCTAssertEqual(accuracy.right[.position, default: 0], 6)
        print(one.summary)
        XCTAssertTrue(one.summary.contains("background    0.750   6/8"), one.summary)
    }

    /// Against itself: SSIM 1, PSNR inf; the 511 window does not fit 128x128 images.
    func testReferenceMetricsAndNotApplicableWindows() throws {
        let report = try ImageEvaluation(images: Self.images, reference: Self.images, captions: nil).run()
        XCTAssertEqual(report.meanSSIM(window: 7)?.mean, 1)
        XCTAssertEqual(report.meanSSIM(window: 7)?.images, 8)
        XCTAssertNil(report.meanSSIM(window: 511))
        XCTAssertNil(report.meanPSNR.mean)
        XCTAssertEqual(report.meanPSNR.identical, 8)
        XCTAssertTrue(report.summary.contains("SSIM 511x511: n/a"), report.summary)
        XCTAssertTrue(report.summary.contains("PSNR: inf"), report.summary)
        let firstRow = report.csv.split(separator: "\n")[1]
        XCTAssertEqual(firstRow, "0.png,128,128,1.000000000,n/a,inf")
    }

    /// Image 1 scored against image 2 under 1's name: the same numbers as ImageMetrics on the pair.
    func testReferenceIsMatchedByFileName() throws {
        let generated = try folder("generated", copying: ["1.png"])
        let reference = try folder("reference")
        try FileManager.default.copyItem(at: Self.images.appendingPathComponent("2.png"), to: reference.appendingPathComponent("1.png"))
        let report = try ImageEvaluation(images: generated, reference: reference, captions: nil, ssimWindows: [7, 127]).run()
        let (a, b) = (try RGBImage.readPNG(Self.images.appendingPathComponent("1.png")), try RGBImage.readPNG(Self.images.appendingPathComponent("2.png")))
        XCTAssertEqual(report.rows.first?.ssim[7], try ImageMetrics.ssim(a, b, windowSize: 7))
        XCTAssertEqual(report.rows.first?.ssim[127], try ImageMetrics.ssim(a, b, windowSize: 127))
        XCTAssertEqual(report.rows.first?.psnr, try ImageMetrics.psnr(a, b))
        XCTAssertLessThan(report.rows.first?.psnr ?? .infinity, 30)
    }

    func testCSVQuotesCaptionsAndListsVerdicts() throws {
        let generated = try folder("generated", copying: ["3.png"])
        let captions = try CaptionList.load(Self.shapes.appendingPathComponent("captions.txt"))
        let report = try ImageEvaluation(images: generated, reference: nil, captions: Self.shapes.appendingPathComponent("captions.txt")).run()
        let lines = report.csv.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "image,width,height,caption,all,background,colour,position,size,shape,read_background,read_objects")
        XCTAssertTrue(lines[1].hasPrefix("3.png,128,128,\"\(captions[3])\",1,1,1,1,1,1,white,\"colour 1.00, centroid"), lines[1])
        XCTAssertEqual(lines.count, 2)
    }

    func testCaptionFiles() throws {
        // CRLF and trailing blank lines are fine; a JSON file is read as COCO captions.
        let crlf = try write("a small red star at the top, gray background\r\nb\r\n\r\n\n", "crlf.txt")
        XCTAssertEqual(try CaptionList.load(crlf), ["a small red star at the top, gray background", "b"])
        let coco = try write(#"{"annotations": [{"image_id": 5, "caption": "x"}, {"image_id": 5, "caption": "y"}, {"image_id": 6, "caption": " z "}]}"#, "c.json")
        XCTAssertEqual(try CaptionList.load(coco), ["x", "z"])

        let blank = try write("first\n\nthird\n", "blank.txt")
        XCTAssertThrowsError(try CaptionList.load(blank)) {
            XCTAssertEqual($0.localizedDescription, "\(blank.path): line 2 is empty (one caption per line, line i + 1 for image i)")
        }
        let empty = try write("\n\n", "empty.txt")
        XCTAssertThrowsError(try CaptionList.load(empty)) { XCTAssertTrue($0.localizedDescription.contains("holds no captions")) }
        let missing = scratch.appendingPathComponent("missing.txt")
        XCTAssertThrowsError(try CaptionList.load(missing)) { XCTAssertTrue($0.localizedDescription.hasPrefix(missing.path)) }
    }

    func testAnUnparsableCaptionNamesFileLineAndCaption() throws {
        let captions = try write("a small red star at the top, gray background\na small red blob at the top, gray background\n", "bad.txt")
        XCTAssertThrowsError(try ImageEvaluation(images: Self.images, reference: nil, captions: captions).run()) { error in
            let text = error.localizedDescription
            XCTAssertTrue(text.hasPrefix("\(captions.path): caption 1 (image 1.png): caption \"a small red blob at the top, gray background\""), text)
        }
    }

    func testBadFoldersAreErrorsNamingTheFile() throws {
        let captions = Self.shapes.appendingPathComponent("captions.txt")
        // No images.
        let empty = try folder("empty")
        XCTAssertThrowsError(try ImageEvaluation(images: empty, reference: nil, captions: captions).run()) {
            XCTAssertEqual($0.localizedDescription, "\(empty.path): holds no .png images")
        }
        let absent = scratch.appendingPathComponent("absent")
        XCTAssertThrowsError(try ImageEvaluation(images: absent, reference: nil, captions: captions).run()) {
            XCTAssertTrue($0.localizedDescription.hasPrefix("\(absent.path): cannot list"), $0.localizedDescription)
        }
        // A name that is not <i>.png cannot be matched with a caption.
        let named = try folder("named")
        try FileManager.default.copyItem(at: Self.images.appendingPathComponent("0.png"), to: named.appendingPathComponent("cat.png"))
        XCTAssertThrowsError(try ImageEvaluation(images: named, reference: nil, captions: captions).run()) {
            XCTAssertTrue($0.localizedDescription.contains("cat.png: captions are matched by image number"), $0.localizedDescription)
        }
        // More images than captions.
        let many = try folder("many")
        try FileManager.default.copyItem(at: Self.images.appendingPathComponent("0.png"), to: many.appendingPathComponent("8.png"))
        XCTAssertThrowsError(try ImageEvaluation(images: many, reference: nil, captions: captions).run()) {
            XCTAssertTrue($0.localizedDescription.contains("holds 8 captions; there is none for image"), $0.localizedDescription)
        }
        // A reference image that is missing, or of another size.
        let generated = try folder("generated", copying: ["0.png", "1.png"])
        let reference = try folder("reference", copying: ["0.png"])
        XCTAssertThrowsError(try ImageEvaluation(images: generated, reference: reference, captions: nil).run()) {
            XCTAssertEqual($0.localizedDescription, "\(reference.appendingPathComponent("1.png").path): no reference image for \(generated.appendingPathComponent("1.png").path)")
        }
        try RGBImage(width: 8, height: 16, pixels: [UInt8](repeating: 0, count: 8 * 16 * 3)).writePNG(to: reference.appendingPathComponent("1.png"))
        XCTAssertThrowsError(try ImageEvaluation(images: generated, reference: reference, captions: nil).run()) {
            XCTAssertTrue($0.localizedDescription.contains("1.png: against \(reference.path)/1.png: the images differ in size (128x128 vs 8x16)"),
                          $0.localizedDescription)
        }
        // A damaged PNG names the file.
        try Data("not a png".utf8).write(to: generated.appendingPathComponent("2.png"))
        XCTAssertThrowsError(try ImageEvaluation(images: generated, reference: nil, captions: captions).run()) {
            XCTAssertTrue($0.localizedDescription.hasPrefix(generated.appendingPathComponent("2.png").path), $0.localizedDescription)
        }
        // Images the checker cannot read (not 128x128).
        let odd = try folder("odd")
        try RGBImage(width: 64, height: 64, pixels: [UInt8](repeating: 0, count: 64 * 64 * 3)).writePNG(to: odd.appendingPathComponent("0.png"))
        XCTAssertThrowsError(try ImageEvaluation(images: odd, reference: nil, captions: captions).run()) {
            XCTAssertTrue($0.localizedDescription.contains("0.png: the caption checker reads 128x128"), $0.localizedDescription)
        }
    }

    func testImagesAreOrderedByNumber() throws {
        let dir = try folder("order")
        for name in ["10.png", "9.png", "b.png", "a.png", ".hidden.png", "notes.txt"] {
            try FileManager.default.copyItem(at: Self.images.appendingPathComponent("0.png"), to: dir.appendingPathComponent(name))
        }
        let report = try ImageEvaluation(images: dir, reference: dir, captions: nil).run()
        XCTAssertEqual(report.rows.map(\.name), ["9.png", "10.png", "a.png", "b.png"])
    }
}
