import CDNNL
import CKernels
import Foundation
import MixDQCompute
import XCTest

/// Fused residual adds (`forward(_:adding:)`) on the oneDNN fp32/bf16 kernels: bit for bit what the
/// unfused forward followed by an fp32 add gives (so fake quant with quantization off and fp-infer
/// stay identical) on odd shapes, large reductions and every implementation oneDNN picks here (run
/// also under `ONEDNN_MAX_CPU_ISA=AVX2`, where no fusion is allowed); mismatched residuals throw.
final class FusedKernelTests: XCTestCase {
    typealias RNG = KernelTests.SplitMix64

    func tensor(_ shape: [Int], _ rng: inout RNG, magnitude: Double = 4) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.data[i] = rng.uniform(-magnitude, magnitude) }
        return t
    }

    var precisions: [Precision] { Precision.allCases.filter(\.isAvailable) }

    /// `a + b` element by element, computed here.
    func sum(_ a: Tensor, _ b: Tensor) -> [Float] { (0..<a.count).map { a.data[$0] + b.data[$0] } }

    /// `fused` equals `unfused + residual` bit for bit.
    func assertFused(_ fused: Tensor, unfused: Tensor, residual: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(fused.scalars, sum(unfused, residual), what, file: file, line: line)
    }

    func testMatmulAddingResidualIsTheUnfusedSumBitForBit() throws {
        var rng = RNG(seed: 11)
        for precision in precisions {
            for (rows, k, n, bias) in [(1, 7, 5, true), (13, 33, 17, false), (77, 64, 40, true), (300, 129, 96, true), (64, 1280, 160, true), (33, 2560, 48, false)] {
                let w = tensor([n, k], &rng, magnitude: 0.5), b = bias ? tensor([n], &rng) : nil
                let kernel = try DNNLMatmul(weight: w, bias: b, precision: precision)
                let x = tensor([1, rows, k], &rng), r = tensor([1, rows, n], &rng)
                let fused = try kernel.forward(x, adding: r)
                XCTAssertEqual(fused.shape, [1, rows, n])
                assertFused(fused, unfused: try kernel.forward(x), residual: r, "\(precision) matmul \(rows)x\(k)x\(n) bias \(bias)")
            }
        }
    }

    /// Where oneDNN runs brgemm kernels (AVX-512 without an ISA limit) the fusion must really happen,
    /// or the bit-exact tests above would pass on the fallback alone.
    var brgemmAvailable: Bool { mdq_isa_detected() == MDQ_ISA_AVX512 && ProcessInfo.processInfo.environment["ONEDNN_MAX_CPU_ISA"] == nil }

    func testFusionIsUsedWhereBrgemmRuns() throws {
        var rng = RNG(seed: 15)
        let matmul = try DNNLMatmul(weight: tensor([96, 128], &rng), bias: tensor([96], &rng), precision: .fp32)
        _ = try matmul.forward(tensor([64, 128], &rng), adding: tensor([64, 96], &rng))
        let conv = try DNNLConvolution(weight: tensor([64, 64, 3, 3], &rng), bias: nil, stride: 1, padding: 1, precision: .fp32)
        _ = try conv.forward(FeatureMap(tensor([1, 8, 8, 64], &rng)), adding: FeatureMap(tensor([1, 8, 8, 64], &rng)))
        let expected = brgemmAvailable ? 1 : 0
        XCTAssertEqual(matmul.fusedResidualShapes, expected)
        XCTAssertEqual(conv.fusedResidualShapes, expected)
    }

    func testConvolutionAddingResidualIsTheUnfusedSumBitForBit() throws {
        var rng = RNG(seed: 12)
        for precision in precisions {
            for (cin, cout, kernelSize, stride, padding, h, w) in [(3, 5, 3, 1, 1, 7, 9), (16, 8, 1, 1, 0, 5, 5), (8, 24, 3, 2, 1, 9, 6), (32, 32, 3, 1, 1, 8, 8), (320, 64, 3, 1, 1, 6, 5)] {
                let bias = tensor([cout], &rng)
                let conv = try DNNLConvolution(weight: tensor([cout, cin, kernelSize, kernelSize], &rng, magnitude: 0.3),
                                               bias: bias, stride: stride, padding: padding, precision: precision)
                let x = FeatureMap(tensor([2, h, w, cin], &rng))
                let (oh, ow) = conv.outputSize(h, w)
                let r = FeatureMap(tensor([2, oh, ow, cout], &rng))
                let fused = try conv.forward(x, adding: r)
                XCTAssertEqual(fused.tensor.shape, [2, oh, ow, cout])
                assertFused(fused.tensor, unfused: try conv.forward(x).tensor, residual: r.tensor, "\(precision) conv \(cin)->\(cout) k\(kernelSize) s\(stride) p\(padding) on \(h)x\(w)")
            }
        }
    }

    /// A kernel without its own fusion gets the protocol's default: forward, then add.
    final class DoublingKernel: LinearKernel {
        func forward(_ x: Tensor) throws -> Tensor { Ops.scale(x, by: 2) }
    }

    func testDefaultFusionIsForwardThenAdd() throws {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let r = Tensor(shape: [2, 3], values: [10, 20, 30, 40, 50, 60])
        let kernel: LinearKernel = DoublingKernel()
        XCTAssertEqual(try kernel.forward(x, adding: r).scalars, [12, 24, 36, 48, 60, 72])
        XCTAssertThrowsError(try kernel.forward(x, adding: Tensor(zeros: [3, 2]))) { error in
            XCTAssertTrue(error is ResidualShapeError, "\(error)")
        }
    }

    func testMismatchedResidualsThrowNamingTheShapes() throws {
        var rng = RNG(seed: 13)
        let matmul = try DNNLMatmul(weight: tensor([4, 6], &rng), bias: nil, precision: .fp32)
        XCTAssertThrowsError(try matmul.forward(tensor([2, 6], &rng), adding: tensor([2, 5], &rng))) { error in
            XCTAssertEqual("\(error)", "residual [2, 5] does not match the layer output [2, 4]")
        }
        let conv = try DNNLConvolution(weight: tensor([4, 3, 3, 3], &rng), bias: nil, stride: 1, padding: 1, precision: .fp32)
        XCTAssertThrowsError(try conv.forward(FeatureMap(tensor([1, 5, 5, 3], &rng)), adding: FeatureMap(tensor([1, 5, 4, 4], &rng)))) { error in
            XCTAssertEqual("\(error)", "residual [1, 5, 4, 4] does not match the layer output [1, 5, 5, 4]")
        }
    }

    func testLayersRouteTheResidualThroughTheirKernel() throws {
        var rng = RNG(seed: 14)
        let w = tensor([5, 4], &rng), b = tensor([5], &rng)
        let layer = Linear(path: "blocks.0.to_out.0", weight: w, bias: b)
        try layer.packForInference()
        let x = tensor([3, 4], &rng), r = tensor([3, 5], &rng)
        XCTAssertEqual(try layer(x, adding: r).scalars, sum(try layer(x), r))
        let conv = try Conv2d(path: "blocks.0.conv2", weight: tensor([6, 2, 3, 3], &rng), bias: tensor([6], &rng), padding: 1)
        let fx = FeatureMap(tensor([1, 4, 4, 2], &rng)), fr = FeatureMap(tensor([1, 4, 4, 6], &rng))
        XCTAssertEqual(try conv(fx, adding: fr).tensor.scalars, sum(try conv(fx).tensor, fr.tensor))
    }
}
