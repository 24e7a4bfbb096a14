import Foundation
import XCTest

/// `mixdq eval-table` (issue 10's quality table) on the synthetic-shapes fixtures, whose verdicts
/// are known from the generator (Tests/Fixtures/synthetic_shapes/expected.json).
final class EvalTableCLITests: XCTestCase {
    static let shapes = MixDQCLI.fixtures.appendingPathComponent("synthetic_shapes")
    static let images = shapes.appendingPathComponent("images")

    /// Image i of the result shows the fixture's scene i-1: with captions.txt every pair is then the
    /// pairing of wrong_captions.txt (caption of scene j+1 against scene j), where `all` is false.
    func shiftedCopy(in dir: URL) throws -> URL {
        let folder = dir.appendingPathComponent("shifted")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for i in 0..<8 {
            try FileManager.default.copyItem(at: Self.images.appendingPathComponent("\((i + 7) % 8).png"),
                                             to: folder.appendingPathComponent("\(i).png"))
        }
        return folder
    }

    func testPoolsSeedsPerSettingAndWritesTableCSVAndSheet() throws {
        let dir = try MixDQCLI.tempDir("eval-table")
        let shifted = try shiftedCopy(in: dir)
        let images = Self.images.path
        let md = dir.appendingPathComponent("out/table.md"), csv = dir.appendingPathComponent("out/table.csv")
        let sheet = dir.appendingPathComponent("out/sheet.png")
        let r = try MixDQCLI.succeed(["eval-table", "--reference", "FP=\(images),\(images)",
                                      "--setting", "same=\(images),\(images)", "--setting", "half shifted=\(images),\(shifted.path)",
                                      "--captions", Self.shapes.appendingPathComponent("captions.txt").path,
                                      "--markdown", md.path, "--csv", csv.path, "--sheet", sheet.path, "--sheet-rows", "3"])
        // The shifted seed's SSIM per image, from `mixdq eval` (whose SSIM is tested against skimage).
        let single = try MixDQCLI.succeed(["eval", "--images", shifted.path, "--reference", images, "--csv", dir.appendingPathComponent("single.csv").path])
        let ssims = try String(contentsOf: dir.appendingPathComponent("single.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
            .map { Double($0.split(separator: ",")[3]) ?? .nan }
        XCTAssertEqual(ssims.count, 8, single.stdout)
        let pooled = (8 + ssims.reduce(0, +)) / 16
        let table = try String(contentsOf: md, encoding: .utf8)
        XCTAssertEqual(r.stdout.hasPrefix(table), true, r.stdout)
        let lines = table.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 5, table)
        XCTAssertEqual(lines[0], "| setting | images | SSIM 7x7 vs FP | PSNR vs FP (dB) | all | background | colour | position | size | shape |")
        XCTAssertEqual(lines[2], "| FP | 16 | - | - | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |")
        XCTAssertEqual(lines[3], "| same | 16 | 1.00000 | inf | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |")
        let half = lines[4].split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(half[0], "half shifted")
        XCTAssertEqual(half[1], "16")
        XCTAssertEqual(Double(half[2]) ?? .nan, pooled, accuracy: 5e-6, "pooled SSIM is the mean over both seeds' images")
        XCTAssertEqual(half[4], "0.500", "seed 0 right everywhere, seed 1 (wrong pairings) nowhere")
        let csvLines = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csvLines.count, 4)
        XCTAssertEqual(csvLines[1], "FP,16,-,-,1.000,1.000,1.000,1.000,1.000,1.000")
        XCTAssertTrue(csvLines[3].hasPrefix("half shifted,16,"), String(csvLines[3]))
        let png = try Data(contentsOf: sheet)
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
    }

    func testPartialAccuracyFromTheGeneratorsVerdicts() throws {
        // one_wrong_captions.txt changes one attribute per image: 6/8 background, colour, position right, 4/8 size and shape.
        let images = Self.images.path
        let r = try MixDQCLI.succeed(["eval-table", "--reference", "FP=\(images)", "--setting", "copy=\(images)",
                                      "--captions", Self.shapes.appendingPathComponent("one_wrong_captions.txt").path])
        XCTAssertTrue(r.stdout.contains("| FP | 8 | - | - | 0.000 | 0.750 | 0.750 | 0.750 | 0.500 | 0.500 |"), r.stdout)
        XCTAssertTrue(r.stdout.contains("| copy | 8 | 1.00000 | inf | 0.000 | 0.750 | 0.750 | 0.750 | 0.500 | 0.500 |"), r.stdout)
    }

    func testBadInputsNameTheSettingOrFolder() throws {
        let dir = try MixDQCLI.tempDir("eval-table-bad")
        let images = Self.images.path
        let md = dir.appendingPathComponent("table.md")
        try MixDQCLI.fail(["eval-table", "--reference", "FP=\(images)"], mentioning: ["--setting", "--captions"])
        try MixDQCLI.fail(["eval-table", "--reference", "FP=\(images),\(images)", "--setting", "W8A8=\(images)", "--markdown", md.path],
                          mentioning: ["W8A8", "1 folder(s)", "one per seed"])
        try MixDQCLI.fail(["eval-table", "--reference", "\(images)", "--setting", "W8A8=\(images)"], mentioning: ["--reference", "NAME=DIR"])
        try MixDQCLI.fail(["eval-table", "--reference", "FP=\(images)", "--setting", "W8A8=\(images),"], mentioning: ["--setting", "empty folder"])
        let few = dir.appendingPathComponent("few")
        try FileManager.default.createDirectory(at: few, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.images.appendingPathComponent("0.png"), to: few.appendingPathComponent("0.png"))
        try MixDQCLI.fail(["eval-table", "--reference", "FP=\(images)", "--setting", "W4=\(few.path)", "--markdown", md.path],
                          mentioning: [few.path, "1 image(s)", "8"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: md.path), "no table after a failure")
        try MixDQCLI.fail(["eval-table", "--reference", "FP=\(images)", "--setting", "copy=\(images)", "--sheet-rows", "0"], mentioning: ["--sheet-rows"])
    }
}
