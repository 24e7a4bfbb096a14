import CKernels
import XCTest

extension XCTestCase {
    /// Runs `body` once per kernel ISA this CPU supports under any ceiling (scalar, AVX2, AVX-512),
    /// pinned with `mdq_isa_force`, then restores the active ISA.
    func forEachISA(_ body: (String) throws -> Void) rethrows {
        let previous = mdq_isa_active()
        defer { mdq_isa_force(previous) }
        for raw in 0...mdq_isa_detected().rawValue {
            let isa = mdq_isa(rawValue: raw)
            mdq_isa_force(isa)
            XCTAssertEqual(mdq_isa_active(), isa)
            try body(["scalar", "avx2", "avx512"][Int(raw)])
        }
    }
}
