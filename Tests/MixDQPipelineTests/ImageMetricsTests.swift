import Foundation
import XCTest
import MixDQIO
import MixDQPipeline

/// SSIM and PSNR against scikit-image on committed image pairs
/// (Tests/Fixtures/image_metrics, scripts/reference/make_image_metric_fixtures.py), and known
/// answers worked out by hand.
final class ImageMetricsTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("image_metrics")

    struct Values: Decodable {
        struct Pair: Decodable {
            let name: String, a: String, b: String, width: Int, height: Int
            let ssim: [String: Double]
            let psnr: Double
        }
        let pairs: [Pair]
    }

    static func loadValues() throws -> Values {
        try JSONDecoder().decode(Values.self, from: Data(contentsOf: dir.appendingPathComponent("values.json")))
    }

    static func image(_ name: String) throws -> RGBImage {
        try RGBImage.readPNG(dir.appendingPathComponent(name))
    }

    static func constant(width: Int, height: Int, _ value: UInt8) -> RGBImage {
        RGBImage(width: width, height: height, pixels: [UInt8](repeating: value, count: width * height * 3))
    }

    /// skimage computes in float64 from filtered sums; ours from exact integer box sums. Both are
    /// float64 evaluations of the same expression, so they agree to rounding (observed at most 3.4e-14).
    static let tolerance = 1e-12

    func testSSIMEqualsSkimage() throws {
        let values = try Self.loadValues()
        XCTAssertEqual(values.pairs.count, 4)
        var checked = 0, worst = 0.0
        for pair in values.pairs {
            let (a, b) = (try Self.image(pair.a), try Self.image(pair.b))
            XCTAssertEqual(a.width, pair.width)
            XCTAssertEqual(a.height, pair.height)
            for (window, expected) in pair.ssim.sorted(by: { Int($0.key)! < Int($1.key)! }) {
                let size = try XCTUnwrap(Int(window))
                let ours = try ImageMetrics.ssim(a, b, windowSize: size)
                let error = abs(ours - expected)
                worst = max(worst, error)
                print("SSIM \(pair.name) W=\(size): ours \(ours) skimage \(expected) abs err \(error)")
                XCTAssertEqual(ours, expected, accuracy: Self.tolerance, "\(pair.name) W=\(size)")
                checked += 1
            }
        }
        print("SSIM vs skimage: \(checked) values, max abs err \(worst)")
        XCTAssertEqual(checked, 16)
        let windows511 = values.pairs.filter { $0.ssim["511"] != nil }.count
        XCTAssertEqual(windows511, 1, "the 512x512 pair must carry the original's 511 window")
    }

    func testPSNREqualsSkimage() throws {
        for pair in try Self.loadValues().pairs {
            let ours = try ImageMetrics.psnr(try Self.image(pair.a), try Self.image(pair.b))
            print("PSNR \(pair.name): ours \(ours) skimage \(pair.psnr) abs err \(abs(ours - pair.psnr))")
            XCTAssertEqual(ours, pair.psnr, accuracy: Self.tolerance, pair.name)
        }
    }

    /// Both flat: variances and covariance are 0, so every window gives
    /// (2·15·245 + C1) C2 / ((15² + 245² + C1) C2) with C1 = (0.01·255)², whatever the window.
    func testSSIMOfFlatImagesFollowsTheFormula() throws {
        let c1 = 2.55 * 2.55
        let expected = (2.0 * 15 * 245 + c1) / (15.0 * 15 + 245 * 245 + c1)
        let (a, b) = (Self.constant(width: 9, height: 12, 15), Self.constant(width: 9, height: 12, 245))
        for window in [3, 5, 9] {
            XCTAssertEqual(try ImageMetrics.ssim(a, b, windowSize: window), expected, accuracy: 1e-15)
        }
    }

    /// One 3x3 window (the whole image), single non-zero pixel in channel 0 of `b` only:
    /// x ≡ 0, y has mean 90/9 = 10 and sample variance (8·10² + 80²)/8 = 900, covariance 0, so
    /// channel 0 gives C1 C2 / ((10² + C1)(900 + C2)) and channels 1, 2 give 1.
    func testSSIMOfOneWindowByHand() throws {
        let a = Self.constant(width: 3, height: 3, 0)
        var b = a
        b.pixels[4 * 3] = 90                       // centre pixel, red
        let (c1, c2) = (2.55 * 2.55, 7.65 * 7.65)
        let red = c1 * c2 / ((100 + c1) * (900 + c2))
        XCTAssertEqual(try ImageMetrics.ssim(a, b, windowSize: 3), (red + 2) / 3, accuracy: 1e-15)
    }

    func testIdenticalImages() throws {
        let a = try Self.image("noise_64x64_a.png")
        XCTAssertEqual(try ImageMetrics.ssim(a, a, windowSize: 7), 1, accuracy: 1e-15)
        let psnr = try ImageMetrics.psnr(a, a)
        XCTAssertEqual(psnr, .infinity)
        XCTAssertEqual("\(psnr)", "inf")
    }

    /// Every sample off by one: MSE 1, so PSNR = 20 log10(255) = 48.1308... dB; off by 255 everywhere: 0 dB.
    func testPSNRByHand() throws {
        let zero = Self.constant(width: 5, height: 4, 0)
        XCTAssertEqual(try ImageMetrics.psnr(zero, Self.constant(width: 5, height: 4, 1)), 48.13080360867910, accuracy: 1e-12)
        XCTAssertEqual(try ImageMetrics.psnr(zero, Self.constant(width: 5, height: 4, 255)), 0, accuracy: 1e-12)
    }

    func testMismatchedSizesAreRejected() throws {
        let (a, b) = (Self.constant(width: 8, height: 8, 0), Self.constant(width: 8, height: 9, 0))
        for metric in [{ try ImageMetrics.ssim(a, b, windowSize: 3) }, { try ImageMetrics.psnr(a, b) }] {
            XCTAssertThrowsError(try metric()) { error in
                XCTAssertEqual(error as? ImageMetricsError,
                               .sizeMismatch(first: .init(width: 8, height: 8), second: .init(width: 8, height: 9)))
                XCTAssertTrue(error.localizedDescription.contains("8x8 vs 8x9"), error.localizedDescription)
            }
        }
    }

    func testWindowsThatDoNotFitAreRejected() throws {
        let a = Self.constant(width: 10, height: 7, 0)
        XCTAssertNoThrow(try ImageMetrics.ssim(a, a, windowSize: 7))
        for window in [-3, 0, 1, 2, 4, 8, 9, 11] {
            XCTAssertThrowsError(try ImageMetrics.ssim(a, a, windowSize: window), "W=\(window)") { error in
                XCTAssertEqual(error as? ImageMetricsError, .invalidWindow(windowSize: window, width: 10, height: 7))
                XCTAssertTrue(error.localizedDescription.contains("window \(window)"), error.localizedDescription)
            }
        }
    }

    func testEmptyImagesAreRejected() throws {
        let empty = RGBImage(width: 0, height: 0, pixels: [])
        XCTAssertThrowsError(try ImageMetrics.psnr(empty, empty)) { error in
            XCTAssertEqual(error as? ImageMetricsError, .emptyImage(width: 0, height: 0))
        }
        XCTAssertThrowsError(try ImageMetrics.ssim(empty, empty, windowSize: 3))
    }
}
