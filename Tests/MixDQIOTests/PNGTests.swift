import Foundation
import MixDQCompute
import MixDQIO
import XCTest

final class PNGTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-png-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    /// diffusers: (x/2+0.5).clamp(0,1) * 255, numpy round (half to even), uint8.
    func testDiffusersMapping() {
        let xs: [Float] = [-1, 1, 0, 2, -3, 0.5, -0.5, .nan, 0.99, -0.999]
        // 0 -> 127.5 -> 128 (even); 0.5 -> 191.25 -> 191; -0.5 -> 63.75 -> 64;
        // 0.99 -> 0.995*255 = 253.725 -> 254; -0.999 -> 0.0005*255 = 0.1275 -> 0.
        let expected: [UInt8] = [0, 255, 128, 255, 0, 191, 64, 0, 254, 0]
        let t = Tensor(shape: [1, 3, 1, xs.count], values: xs + xs + xs)
        let img = RGBImage.fromDecoded(t, index: 0)
        XCTAssertEqual(img.width, xs.count)
        XCTAssertEqual(img.height, 1)
        for (x, e) in expected.enumerated() {
            XCTAssertEqual(img[x, 0, 0], e, "x = \(xs[x])")
        }
    }

    func testLayoutNCHWToInterleaved() {
        // [N=2, C=3, H=2, W=2]; in image 1, channel c at pixel p holds k/16*2-1 with k = c*4+p.
        var v = [Float](repeating: -1, count: 2 * 3 * 4)
        for c in 0..<3 { for p in 0..<4 { v[12 + c * 4 + p] = Float(c * 4 + p) / 16 * 2 - 1 } }
        let img = RGBImage.fromDecoded(Tensor(shape: [2, 3, 2, 2], values: v), index: 1)
        XCTAssertEqual(img.width, 2)
        XCTAssertEqual(img.height, 2)
        for y in 0..<2 { for x in 0..<2 { for c in 0..<3 {
            // k/16 and 255k/16 are exact in float32, so only k = 8 is a tie (127.5 -> 128).
            let expected = (Float(c * 4 + y * 2 + x) * 255 / 16).rounded(.toNearestOrEven)
            XCTAssertEqual(img[x, y, c], UInt8(expected))
        } } }
        XCTAssertEqual(RGBImage.fromDecoded(Tensor(shape: [2, 3, 2, 2], values: v), index: 0).pixels,
                       [UInt8](repeating: 0, count: 12))
    }

    func testNHWCMatchesNCHW() {
        let (n, h, w) = (2, 3, 4)
        let nchw = Tensor(shape: [n, 3, h, w], values: (0..<(n * 3 * h * w)).map { Float($0 % 17) / 8 - 1 })
        var nhwc = [Float](repeating: 0, count: nchw.count)
        for b in 0..<n { for c in 0..<3 { for p in 0..<(h * w) {
            nhwc[(b * h * w + p) * 3 + c] = nchw[flat: (b * 3 + c) * h * w + p]
        } } }
        let map = FeatureMap(Tensor(shape: [n, h, w, 3], values: nhwc))
        for b in 0..<n {
            XCTAssertEqual(RGBImage.fromDecoded(map, index: b), RGBImage.fromDecoded(nchw, index: b))
        }
    }

    func testRoundTrip() throws {
        let (w, h) = (37, 23)
        let pixels = (0..<(w * h * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 / 5) }
        let img = RGBImage(width: w, height: h, pixels: pixels)
        let url = dir.appendingPathComponent("0.png")
        try img.writePNG(to: url)
        XCTAssertEqual(try RGBImage.readPNG(url), img)
        // Overwrite in place; no temporary files left behind.
        try RGBImage(width: 1, height: 1, pixels: [1, 2, 3]).writePNG(to: url)
        XCTAssertEqual(try RGBImage.readPNG(url).pixels, [1, 2, 3])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["0.png"])
    }

    func testUnwritableFolderNamesPath() throws {
        let img = RGBImage(width: 1, height: 1, pixels: [0, 0, 0])
        // A "folder" that is a regular file is unwritable even for root.
        let blocker = dir.appendingPathComponent("file")
        try Data([1]).write(to: blocker)
        let url = blocker.appendingPathComponent("img.png")
        XCTAssertThrowsError(try img.writePNG(to: url)) { error in
            XCTAssertTrue(error is PNGError)
            XCTAssertTrue("\(error)".contains(url.path), "\(error)")
        }
        let missing = dir.appendingPathComponent("no/such/folder/img.png")
        XCTAssertThrowsError(try img.writePNG(to: missing)) { error in
            XCTAssertTrue("\(error)".contains(missing.path), "\(error)")
        }
    }

    func testReadErrorsNamePath() throws {
        let bad = dir.appendingPathComponent("bad.png")
        try "not a png".write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RGBImage.readPNG(bad)) { error in
            XCTAssertTrue("\(error)".contains(bad.path), "\(error)")
        }
        let missing = dir.appendingPathComponent("missing.png")
        XCTAssertThrowsError(try RGBImage.readPNG(missing)) { error in
            XCTAssertTrue("\(error)".contains(missing.path), "\(error)")
        }
    }

    /// PIL reads what we write (only where the reference Python exists; CI skips).
    func testPILReadsOurPNG() throws {
        let img = RGBImage(width: 3, height: 2, pixels: (0..<18).map { UInt8($0 * 14) })
        let url = dir.appendingPathComponent("pil.png")
        try img.writePNG(to: url)
        let output = try ReferencePython.run("""
        import sys
        from PIL import Image
        im = Image.open(sys.argv[1])
        assert im.mode == "RGB" and im.size == (3, 2), (im.mode, im.size)
        assert list(im.tobytes()) == [i * 14 for i in range(18)]
        print("ok")
        """, [url.path], modules: ["PIL"])
        XCTAssertTrue(output.contains("ok"), output)
    }
}
