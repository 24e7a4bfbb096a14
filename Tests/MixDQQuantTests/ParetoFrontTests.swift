import Foundation
import XCTest
import MixDQCompute
import MixDQQuant

/// `ParetoFront` (issue 9 item 6): hand-made cases with known fronts, and random instances (small
/// integer grids, so ties and duplicates are common) against the definition checked pair by pair.
final class ParetoFrontTests: XCTestCase {
    typealias P = ParetoFront.Point

    func testKnownFront() {
        let points = [
            P(meanBits: 4, bytes: 100, quality: 0.90),  // 0 optimal
            P(meanBits: 5, bytes: 120, quality: 0.95),  // 1 optimal (more bits, but better)
            P(meanBits: 5, bytes: 120, quality: 0.93),  // 2 dominated by 1 (equal cost, worse)
            P(meanBits: 6, bytes: 130, quality: 0.94),  // 3 dominated by 1
            P(meanBits: 4, bytes: 90, quality: 0.90),   // 4 optimal, dominates 0 (fewer bytes, same rest)
            P(meanBits: 8, bytes: 200, quality: 0.99),  // 5 optimal
            P(meanBits: 8, bytes: 200, quality: 0.99),  // 6 optimal: an equal point does not dominate
        ]
        let d = ParetoFront.dominators(points)
        XCTAssertEqual(d.map { $0 == nil }, [false, true, false, false, true, true, true])
        XCTAssertEqual(d[0], 4)
        XCTAssertEqual(d[2], 1)
        XCTAssertEqual(d[3], 1)
        XCTAssertEqual(ParetoFront.dominators([]), [])
        XCTAssertEqual(ParetoFront.dominators([P(meanBits: 3, bytes: 1, quality: .nan)]), [nil])
    }

    func testRandomInstancesMatchTheDefinition() {
        var rng = SplitMix64(seed: 9)
        func small() -> Double { Double(rng.next() % 4) }
        for instance in 0..<2000 {
            let n = 1 + Int(rng.next() % 12)
            let points = (0..<n).map { _ in P(meanBits: 2 + small(), bytes: 100 * small(), quality: small() / 4) }
            let d = ParetoFront.dominators(points)
            for i in 0..<n {
                // Dominated: some other point no worse in all three and better in one.
                let dominated = (0..<n).contains { j in
                    j != i && points[j].meanBits <= points[i].meanBits && points[j].bytes <= points[i].bytes && points[j].quality >= points[i].quality
                        && (points[j].meanBits < points[i].meanBits || points[j].bytes < points[i].bytes || points[j].quality > points[i].quality)
                }
                XCTAssertEqual(d[i] != nil, dominated, "instance \(instance), point \(i) of \(points)")
                if let j = d[i] {
                    XCTAssertNil(d[j], "instance \(instance): the dominator \(j) of \(i) must itself be optimal")
                    XCTAssertTrue(points[j].meanBits <= points[i].meanBits && points[j].bytes <= points[i].bytes
                                  && points[j].quality >= points[i].quality && points[j] != points[i],
                                  "instance \(instance): \(j) does not dominate \(i)")
                }
            }
        }
    }
}
