import CKernels
import Foundation
import MixDQCompute
import XCTest

/// bf16 matmuls whose reduction runs in slices summed into the output (`DNNLMatmul.reductionSlices`):
/// the slice count rule, the result against fp64 within the fp32 accumulation bound, and the fused
/// GEGLU and shared-input paths giving the plain path's bits.
final class SlicedMatmulTests: XCTestCase {
    func testSliceCountRule() {
        // Slices of at most 640, each a multiple of 32 deep, only where K >= 2048 and K >= N.
        let cases: [(k: Int, n: Int, slices: Int)] = [
            (5120, 1280, 8), (2560, 640, 4), (2048, 1280, 4), (2048, 2048, 4), (4096, 64, 8), (2080, 32, 5),
            (1280, 1280, 1), (1920, 64, 1), (640, 640, 1), (2048, 10240, 1), (2050, 100, 1),
        ]
        for c in cases {
            XCTAssertEqual(DNNLMatmul.reductionSlices(inFeatures: c.k, outFeatures: c.n, precision: .bf16), c.slices, "K \(c.k) N \(c.n)")
        }
        XCTAssertEqual(DNNLMatmul.reductionSlices(inFeatures: 5120, outFeatures: 1280, precision: .fp32), 1)
    }

    /// Every element within γ(K+1)·(Σ|x̂ ŵ| + |b|) + u·|y| of the fp64 product of the bf16-rounded
    /// operands (u = 2^-24): fp32 accumulation in any order, slices included, then the output's rounding.
    func testSlicedMatmulWithinTheAccumulationBound() throws {
        guard Precision.bf16.isAvailable else { throw XCTSkip("no oneDNN bf16 on this CPU (\(CPUInfo.current.summary))") }
        let u = pow(2.0, -24.0)
        var worst = 0.0
        for (shape, seed) in zip([(k: 2048, n: 96, slices: 4), (k: 2560, n: 640, slices: 4), (k: 2080, n: 200, slices: 5), (k: 5120, n: 64, slices: 8)], UInt64(1)...) {
            let w = TestTensors.uniform([shape.n, shape.k], seed: seed, amplitude: 0.3), b = TestTensors.uniform([shape.n], seed: seed + 100, amplitude: 1)
            let matmul = try DNNLMatmul(weight: w, bias: b, precision: .bf16)
            XCTAssertEqual(matmul.slices, DNNLMatmul.reductionSlicingApplies ? shape.slices : 1)
            let wr = TestTensors.bf16Widened(w)
            for rows in [1, 37, 300] {
                let x = TestTensors.uniform([rows, shape.k], seed: seed * 10 + UInt64(rows), amplitude: 2)
                let y = try matmul.forward(x)
                let xr = TestTensors.bf16Widened(x)
                let gamma = Double(shape.k + 1) * u / (1 - Double(shape.k + 1) * u)
                for r in 0..<rows {
                    for o in 0..<shape.n {
                        var sum = Double(b.data[o]), magnitude = abs(Double(b.data[o]))
                        for e in 0..<shape.k {
                            let p = xr[r * shape.k + e] * wr[o * shape.k + e]
                            sum += p; magnitude += abs(p)
                        }
                        let bound = gamma * magnitude + u * abs(sum)
                        let error = abs(Double(y.data[r * shape.n + o]) - sum)
                        worst = max(worst, error / bound)
                        if error > bound { XCTFail("K \(shape.k) N \(shape.n) rows \(rows) [\(r), \(o)]: error \(error) > bound \(bound)"); return }
                    }
                }
            }
        }
        print("sliced bf16 matmul: worst error / bound \(worst)")
    }

    func testSlicedPathsGiveThePlainPathsBits() throws {
        guard DNNLMatmul.reductionSlicingApplies else { throw XCTSkip("bf16 reductions are sliced only on AMX (\(CPUInfo.current.summary))") }
        let (inFeatures, outFeatures) = (2048, 64)
        let matmul = try DNNLMatmul(weight: TestTensors.uniform([outFeatures, inFeatures], seed: 1, amplitude: 0.1),
                                    bias: TestTensors.uniform([outFeatures], seed: 2, amplitude: 1), precision: .bf16)
        func bits(_ t: Tensor) -> [UInt32] { (0..<t.count).map { t.data[$0].bitPattern } }
        let proj = TestTensors.uniform([3, 5, 2 * inFeatures], seed: 3, amplitude: 3), residual = TestTensors.uniform([3, 5, outFeatures], seed: 4, amplitude: 1)
        let unfused = try matmul.forward(Ops.geglu(proj))
        XCTAssertEqual(bits(try matmul.forward(gegluOf: proj, adding: nil)), bits(unfused))
        Ops.addInPlace(unfused, residual)
        XCTAssertEqual(bits(try matmul.forward(gegluOf: proj, adding: residual)), bits(unfused))
        let x = TestTensors.uniform([2, 11, inFeatures], seed: 5, amplitude: 3)
        XCTAssertEqual(bits(try matmul.forward(bf16: BF16Activation(rounding: x))), bits(try matmul.forward(x)))
    }
}
