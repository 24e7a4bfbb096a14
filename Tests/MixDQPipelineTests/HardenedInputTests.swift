import Foundation
import XCTest
import MixDQIO
import MixDQPipeline

/// Resume and default-model hardening at the library level (issue 7, "hardened inputs").
final class HardenedInputTests: XCTestCase {
    typealias Env = MixDQPipelineTestEnv

    // MARK: Resume

    func job(_ folder: URL, count: Int, shard: ImageGenerationJob.Shard = .init(index: 0, count: 1)) -> ImageGenerationJob {
        ImageGenerationJob(prompts: Array(repeating: "a cat", count: count), seed: 1, batchSize: 2, steps: 1, guidance: 0,
                           height: 16, width: 24, folder: folder, shard: shard)
    }

    func image(width: Int, height: Int) -> RGBImage {
        RGBImage(width: width, height: height, pixels: (0..<(width * height * 3)).map { UInt8($0 % 251) })
    }

    /// Only a whole PNG of the job's size counts as done: a 0-byte file, a cut-off file, a file
    /// with a damaged chunk, text, or an image of another size are made again.
    func testOnlyCompleteImagesOfTheRightSizeCountAsDone() throws {
        let folder = try Env.tempDir("resume")
        let j = job(folder, count: 8)
        try image(width: 24, height: 16).writePNG(to: j.imageURL(0))                    // complete
        let good = try Data(contentsOf: j.imageURL(0))
        try Data().write(to: j.imageURL(1))                                              // 0 bytes
        try good.prefix(good.count / 2).write(to: j.imageURL(2))                          // cut off
        var flipped = good
        flipped[good.count - 20] ^= 0xFF                                                  // IDAT byte: CRC mismatch
        try flipped.write(to: j.imageURL(3))
        try Data("not a png".utf8).write(to: j.imageURL(4))
        try image(width: 16, height: 16).writePNG(to: j.imageURL(5))                    // other size
        try FileManager.default.createDirectory(at: j.imageURL(6), withIntermediateDirectories: true)  // a folder: writing names it
        // 7: absent
        XCTAssertEqual(j.existingImage(0), .complete)
        XCTAssertEqual(j.existingImage(6), .absent)
        XCTAssertEqual(j.existingImage(7), .absent)
        for i in 1...5 {
            guard case let .unusable(why) = j.existingImage(i) else { XCTFail("image \(i) counted as usable"); continue }
            XCTAssertFalse(why.isEmpty)
        }
        if case let .unusable(why) = j.existingImage(5) { XCTAssertTrue(why.contains("16x16") && why.contains("24x16"), why) }
        XCTAssertEqual(j.pending, [1, 2, 3, 4, 5, 6, 7])
        // A shard sees only its own indices.
        XCTAssertEqual(job(folder, count: 8, shard: .init(index: 1, count: 2)).pending, [1, 3, 5, 7])
    }

    // MARK: default-model

    func files(under url: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let fm = FileManager.default
        guard let e = fm.enumerator(at: url, includingPropertiesForKeys: [.isRegularFileKey]) else { return out }
        for case let f as URL in e where (try f.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
            out[f.path] = try Data(contentsOf: f)
        }
        return out
    }

    /// `write(to:)` refuses a file or a folder it did not write (leaving it exactly as it was),
    /// fills an empty folder, and replaces a model it wrote.
    func testWriteNeverReplacesWhatItDidNotWrite() throws {
        let dir = try Env.tempDir("default-model")
        let file = dir.appendingPathComponent("notes.txt")
        try Data("my notes".utf8).write(to: file)
        let userFolder = dir.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: userFolder, withIntermediateDirectories: true)
        try Data("jpeg".utf8).write(to: userFolder.appendingPathComponent("a.jpg"))
        // A folder with our stamp but a file of the user's beside it is not ours to delete either.
        let mixed = dir.appendingPathComponent("mixed")
        try FileManager.default.createDirectory(at: mixed, withIntermediateDirectories: true)
        try Data("tiny-sdxl-v1\n".utf8).write(to: mixed.appendingPathComponent(DefaultModel.stampName))
        try Data("mine".utf8).write(to: mixed.appendingPathComponent("thesis.tex"))

        for target in [file, userFolder, mixed] {
            let before = try files(under: dir)
            XCTAssertThrowsError(try DefaultModel.write(to: target)) { error in
                let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
                XCTAssertTrue(text.contains(target.path) && text.contains("refusing"), text)
            }
            XCTAssertEqual(try files(under: dir), before, "\(target.path) or its neighbours were changed")
        }
        XCTAssertEqual(try Data(contentsOf: file), Data("my notes".utf8))
        XCTAssertEqual(try Data(contentsOf: userFolder.appendingPathComponent("a.jpg")), Data("jpeg".utf8))

        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try DefaultModel.write(to: empty)
        let first = try files(under: empty)
        XCTAssertNotNil(first[empty.appendingPathComponent("unet/diffusion_pytorch_model.safetensors").path])
        try DefaultModel.write(to: empty)   // ours: replaced, same bytes (the model is deterministic)
        XCTAssertEqual(try files(under: empty), first)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "temporary folders left behind")
    }
}
