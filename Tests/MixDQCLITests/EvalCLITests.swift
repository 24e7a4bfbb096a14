import Foundation
import XCTest

/// `mixdq eval` as a user runs it (issue 10 item 4), on the synthetic-shapes fixtures
/// (Tests/Fixtures/synthetic_shapes; known answers in expected.json).
final class EvalCLITests: XCTestCase {
    static let shapes = MixDQCLI.fixtures.appendingPathComponent("synthetic_shapes")
    static let images = shapes.appendingPathComponent("images")

    func testPrintsTheTableAndWritesTheCSV() throws {
        let dir = try MixDQCLI.tempDir("eval")
        let csv = dir.appendingPathComponent("out/eval.csv")
        let r = try MixDQCLI.succeed(["eval", "--images", Self.images.path, "--reference", Self.images.path,
                                      "--captions", Self.shapes.appendingPathComponent("one_wrong_captions.txt").path, "--csv", csv.path])
        for line in ["images: 8", "SSIM 7x7: 1.000000 (mean over 8 image(s))", "SSIM 511x511: n/a",
                     "PSNR: inf (every image is identical to its reference)",
                     "all           0.000   0/8", "background    0.750   6/8", "colour        0.750   6/8",
                     "position      0.750   6/8", "size          0.500   4/8", "shape         0.500   4/8",
                     "wrote 8 row(s) to \(csv.path)"] {
            XCTAssertTrue(r.stdout.contains(line), "missing '\(line)':\n\(r.stdout)")
        }
        let rows = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.count, 9)
        XCTAssertEqual(rows[0], "image,width,height,ssim_7,ssim_511,psnr,caption,all,background,colour,position,size,shape,read_background,read_objects")
        // Image 0: only the background was changed (black image, caption says white).
        XCTAssertTrue(rows[1].hasPrefix("0.png,128,128,1.000000000,n/a,inf,\"a small yellow square at the bottom right, white background\",0,0,1,1,1,1,black,"),
                      String(rows[1]))
    }

    func testGroundTruthScoresEverything() throws {
        let r = try MixDQCLI.succeed(["eval", "--images", Self.images.path, "--captions", Self.shapes.appendingPathComponent("captions.txt").path])
        XCTAssertTrue(r.stdout.contains("all           1.000   8/8"), r.stdout)
        XCTAssertFalse(r.stdout.contains("SSIM"), r.stdout)
    }

    func testHelp() throws {
        let r = try MixDQCLI.run(["eval", "--help"])
        XCTAssertEqual(r.status, 0, "\(r)")
        for text in ["USAGE: mixdq eval", "--images <images>", "--reference <reference>", "--captions <captions>", "--csv <csv>",
                     "--ssim-windows <ssim-windows>", "(default: 7,511)"] {
            XCTAssertTrue(r.stdout.contains(text), "missing '\(text)':\n\(r.stdout)")
        }
        let root = try MixDQCLI.run(["--help"])
        XCTAssertTrue(root.stdout.contains("\n  eval "), root.stdout)
    }

    func testBadArgumentsAndInputsExitNonZeroWithoutACSV() throws {
        let dir = try MixDQCLI.tempDir("eval-bad")
        let csv = dir.appendingPathComponent("eval.csv")
        try MixDQCLI.fail(["eval", "--images", Self.images.path], mentioning: ["--reference", "--captions"])
        for windows in ["8", "1", "7,", "x", "5000"] {
            try MixDQCLI.fail(["eval", "--images", Self.images.path, "--reference", Self.images.path, "--ssim-windows", windows],
                              mentioning: ["--ssim-windows", "odd"])
        }
        let captions = dir.appendingPathComponent("captions.txt")
        try "a small yellow square at the bottom right, black background\na small purple triangle top right, white background\n"
            .write(to: captions, atomically: true, encoding: .utf8)
        try MixDQCLI.fail(["eval", "--images", Self.images.path, "--captions", captions.path, "--csv", csv.path],
                          mentioning: [captions.path, "caption 1", "a small purple triangle top right"])
        try MixDQCLI.fail(["eval", "--images", dir.appendingPathComponent("none").path, "--reference", Self.images.path, "--csv", csv.path],
                          mentioning: ["none", "cannot list the image folder"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: csv.path), "no CSV after a failure")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["captions.txt"], "no temporary files left")
    }
}
