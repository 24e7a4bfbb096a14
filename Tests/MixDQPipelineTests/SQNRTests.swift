import XCTest
import MixDQCompute
import MixDQPipeline

/// SQNR = 10·log10(Σy² / Σ(ŷ−y)²) over the whole batch, values worked by hand.
final class SQNRTests: XCTestCase {
    func testMatchesTheFormula() throws {
        let y = Tensor(shape: [2, 2], values: [1, 2, -2, 0])        // Σy² = 9
        let yHat = Tensor(shape: [2, 2], values: [1, 3, -2, 0.5])  // Σ(ŷ−y)² = 1 + 0.25
        XCTAssertEqual(try SQNR.decibels(yHat, reference: y), 10 * log10(9 / 1.25), accuracy: 1e-12)
        XCTAssertEqual(try SQNR.decibels(y, reference: y), .infinity)
        // Noise equal to the signal: 0 dB; ten times the signal power: -10 dB.
        XCTAssertEqual(try SQNR.decibels(Tensor(shape: [1], values: [0]), reference: Tensor(shape: [1], values: [3])), 0, accuracy: 1e-12)
        XCTAssertEqual(try SQNR.decibels(Tensor(shape: [1], values: [1 + Float(10).squareRoot()]), reference: Tensor(shape: [1], values: [1])),
                       -10, accuracy: 1e-5)
        XCTAssertThrowsError(try SQNR.decibels(Tensor(shape: [4], values: [1, 2, 3, 4]), reference: y)) { e in
            XCTAssertTrue(e.localizedDescription.contains("[4]") && e.localizedDescription.contains("[2, 2]"), e.localizedDescription)
        }
    }
}
