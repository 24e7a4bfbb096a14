import Foundation
import XCTest
import MixDQIO
import MixDQPipeline

/// The pieces of `search select` that need no rendering: ranking and its ties, the report's CSV
/// (quoting, infinite PSNR), the Pareto table, the render stamp that guards the image cache, and
/// the contact sheet's fitting into cairo's largest surface.
final class SelectionReportTests: XCTestCase {
    func result(_ name: String, bits: Double, bytes: Double, ssim: [Double], psnr: [Double]) -> CandidateResult {
        CandidateResult(name: name, file: URL(fileURLWithPath: "/c/\(name).yaml"), meanBits: bits, bytes: bytes,
                        scores: zip(ssim, psnr).map { PromptScore(ssim: $0, psnr: $1) })
    }

    func testRankingBreaksTiesByBytesThenBitsThenName() {
        let results = [
            // Mean SSIM 0.375 for a-d (exact in binary, so the tie is real).
            result("weight_c", bits: 4, bytes: 100, ssim: [0.5, 0.25], psnr: [30, 20]),
            result("weight_b", bits: 4, bytes: 90, ssim: [0.25, 0.5], psnr: [25, 25]),   // fewest bytes of the tie
            result("weight_a", bits: 5, bytes: 100, ssim: [0.375, 0.375], psnr: [40, 40]),
            result("weight_d", bits: 3, bytes: 100, ssim: [0.375, 0.375], psnr: [10, 10]),   // fewest bits of the rest
            result("weight_e", bits: 8, bytes: 300, ssim: [0.99, 0.99], psnr: [50, 50]),
        ]
        XCTAssertEqual(CandidateResult.ranked(results, by: .ssim).map(\.name), ["weight_e", "weight_b", "weight_d", "weight_c", "weight_a"])
        XCTAssertEqual(CandidateResult.ranked(results, by: .psnr).map(\.name), ["weight_e", "weight_a", "weight_b", "weight_c", "weight_d"])
    }

    func testCSVQuotesNamesAndPrintsInfinitePSNR() {
        let report = SelectionReport(kind: .weight, comparison: ImageComparison(), prompts: ["a cat", "a dog"], results: [
            result("weight_x,1", bits: 8, bytes: 200, ssim: [1, 0.5], psnr: [.infinity, 20]),
            result("weight_y", bits: 2, bytes: 50, ssim: [0.4, 0.4], psnr: [12, 14]),
        ], ratioSource: "ratio.yaml")
        let lines = report.csv.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, [
            "rank,candidate,mean_bits,model_bytes,pareto_optimal,mean_ssim,mean_psnr,ssim_0,ssim_1,psnr_0,psnr_1",
            "1,\"weight_x,1\",8.0000,200,yes,0.750000,inf,1.000000,0.500000,inf,20.0000",
            "2,weight_y,2.0000,50,yes,0.400000,13.0000,0.400000,0.400000,12.0000,14.0000",
        ])
        XCTAssertEqual(report.chosen?.name, "weight_x,1")
        XCTAssertTrue(report.markdown.contains("chosen: **weight_x,1**"), report.markdown)
        XCTAssertTrue(report.markdown.contains("1. a dog"), report.markdown)
    }

    func testParetoTableNamesADominatingCandidate() {
        let report = ParetoReport(results: [
            result("weight_a", bits: 4, bytes: 100, ssim: [0.9], psnr: [30]),
            result("weight_b", bits: 5, bytes: 120, ssim: [0.85], psnr: [28]),   // worse and costlier than a
            result("weight_c", bits: 6, bytes: 150, ssim: [0.95], psnr: [35]),
        ], metric: .ssim)
        XCTAssertEqual(report.csv, """
            candidate,mean_bits,model_bytes,mean_ssim,pareto_optimal,dominated_by
            weight_a,4.0000,100,0.900000,yes,
            weight_b,5.0000,120,0.850000,no,weight_a
            weight_c,6.0000,150,0.950000,yes,

            """)
        XCTAssertEqual(report.optimal.map(\.name), ["weight_a", "weight_c"])
    }

    func testRenderStampGuardsTheCache() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("stamp-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let stamp = RenderStamp([("seed", "42"), ("size", "128x128")])
        try stamp.claim(dir)
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent(RenderStamp.fileName), encoding: .utf8), stamp.text)
        try stamp.claim(dir)   // the same settings: reused
        XCTAssertThrowsError(try RenderStamp([("seed", "7"), ("size", "128x128")]).claim(dir)) {
            XCTAssertTrue("\($0)".contains("was 'seed: 42', now 'seed: 7'"), "\($0)")
        }
        let foreign = dir.appendingPathComponent("foreign")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: foreign.appendingPathComponent("0.png"))
        XCTAssertThrowsError(try stamp.claim(foreign)) { XCTAssertTrue("\($0)".contains("0.png") && "\($0)".contains("no render.txt"), "\($0)") }
    }

    func testContactSheetShrinksToCairosLargestSurface() {
        func sheet(columns: Int) -> ContactSheet {
            ContactSheet(title: ["t", "u"], columns: (0..<columns).map { _ in ContactSheet.Column(title: "c", details: [], images: [], captions: []) },
                         imageWidth: 512, imageHeight: 256, cellSide: 192)
        }
        XCTAssertEqual(sheet(columns: 3).cellSize.width, 192)
        XCTAssertEqual(sheet(columns: 3).cellSize.height, 96)
        let wide = sheet(columns: 400)
        XCTAssertLessThanOrEqual(wide.size.width, 32767)
        XCTAssertLessThan(wide.cellSize.width, 192)
        XCTAssertEqual(wide.cellSize.width / wide.cellSize.height, 2, accuracy: 1e-9)
        XCTAssertThrowsError(try sheet(columns: 3000).render()) { XCTAssertTrue("\($0)".contains("3000 columns"), "\($0)") }
    }

    func testParetoPlotDrawsDegenerateAndInfiniteValues() throws {
        // Equal qualities, a spread far below a float's resolution at 0.99, and an infinite PSNR (not placed).
        for (metric, qualities) in [(ImageComparison.Metric.ssim, [0.5, 0.5, 0.5]), (.ssim, [0.99, 0.99 + 1e-17, 0.99 + 2e-16]),
                                    (.psnr, [30, .infinity, 25])] {
            let results = qualities.enumerated().map { i, q in
                result("weight_\(i)", bits: 4 + Double(i), bytes: 100 * Double(i + 1), ssim: [q], psnr: [q])
            }
            let image = try ParetoPlot(report: ParetoReport(results: results, metric: metric), chosen: "weight_0", title: "t").render()
            XCTAssertEqual([image.width, image.height], [ParetoPlot.width, ParetoPlot.height])
            // Something besides the white background was drawn (frame, points, text).
            XCTAssertGreaterThan(image.pixels.filter { $0 < 128 }.count, 1000)
        }
    }
}
