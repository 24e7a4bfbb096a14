import Foundation
import XCTest
import MixDQCompute

/// The committed fixtures (written by scripts/reference/*.py).
let fixturesURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

/// Max-abs and max-relative error (max |a-b| / max |b|), printed and checked.
@discardableResult
func assertClose(_ name: String, _ got: Tensor, _ want: Tensor, relTol: Float,
                 file: StaticString = #filePath, line: UInt = #line) -> (maxAbs: Float, rel: Float) {
    XCTAssertEqual(got.shape, want.shape, "\(name): shape", file: file, line: line)
    guard got.shape == want.shape else { return (.infinity, .infinity) }
    var maxAbs: Float = 0, refMax: Float = 0
    for i in 0..<got.count {
        let d = abs(got.data[i] - want.data[i])
        if !(d <= maxAbs) { maxAbs = d.isNaN ? .infinity : max(maxAbs, d) }
        refMax = max(refMax, abs(want.data[i]))
    }
    let rel = maxAbs / max(refMax, 1e-30)
    print(String(format: "parity %-28@ max-abs %.3e  rel %.3e  (max|ref| %.3e)", name as NSString, maxAbs, rel, refMax))
    XCTAssertLessThanOrEqual(rel, relTol, "\(name): relative error \(rel) > \(relTol)", file: file, line: line)
    return (maxAbs, rel)
}
