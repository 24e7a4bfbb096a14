import Foundation
import MixDQCompute
import XCTest

/// The residual seam (`LinearKernel/Conv2dKernel.forward(_:adding:)`, `Linear/Conv2d` called with
/// `adding:`): every kernel without its own fusion gets forward-then-add, layers route the residual
/// through their installed kernel, and a residual of the wrong shape is a thrown error naming both
/// shapes.
final class ResidualSeamTests: XCTestCase {
    typealias RNG = KernelTests.SplitMix64

    func tensor(_ shape: [Int], _ rng: inout RNG) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.data[i] = rng.uniform(-4, 4) }
        return t
    }

    /// `a + b` element by element, computed here.
    func sum(_ a: Tensor, _ b: Tensor) -> [Float] { (0..<a.count).map { a.data[$0] + b.data[$0] } }

    /// A kernel without its own fusion gets the protocol's default: forward, then add.
    final class DoublingKernel: LinearKernel {
        func forward(_ x: Tensor) throws -> Tensor { Ops.scale(x, by: 2) }
    }

    /// A kernel with its own fusion: the layer must call it, not the default.
    final class FusingKernel: LinearKernel {
        var fusedCalls = 0
        func forward(_ x: Tensor) throws -> Tensor { x.copy() }
        func forward(_ x: Tensor, adding residual: Tensor) throws -> Tensor {
            fusedCalls += 1
            return Tensor(shape: x.shape, values: (0..<x.count).map { x.data[$0] - residual.data[$0] })
        }
    }

    func testDefaultIsForwardThenAdd() throws {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let r = Tensor(shape: [2, 3], values: [10, 20, 30, 40, 50, 60])
        let kernel: LinearKernel = DoublingKernel()
        XCTAssertEqual(try kernel.forward(x, adding: r).scalars, [12, 24, 36, 48, 60, 72])
    }

    func testLayersRouteTheResidualThroughTheirKernel() throws {
        var rng = RNG(seed: 14)
        let layer = Linear(path: "blocks.0.to_out.0", weight: tensor([5, 4], &rng), bias: tensor([5], &rng))
        try layer.packForInference()
        let x = tensor([3, 4], &rng), r = tensor([3, 5], &rng)
        XCTAssertEqual(try layer(x, adding: r).scalars, sum(try layer(x), r))
        let conv = try Conv2d(path: "blocks.0.conv2", weight: tensor([6, 2, 3, 3], &rng), bias: tensor([6], &rng), padding: 1)
        let fx = FeatureMap(tensor([1, 4, 4, 2], &rng)), fr = FeatureMap(tensor([1, 4, 4, 6], &rng))
        XCTAssertEqual(try conv(fx, adding: fr).tensor.scalars, sum(try conv(fx).tensor, fr.tensor))

        let fusing = FusingKernel()
        let installed = Linear(path: "blocks.0.ff.net.2", inFeatures: 2, outFeatures: 2, bias: nil, quantizedKernel: fusing)
        let y = try installed(Tensor(shape: [1, 2], values: [5, 7]), adding: Tensor(shape: [1, 2], values: [1, 2]))
        XCTAssertEqual(y.scalars, [4, 5])
        XCTAssertEqual(fusing.fusedCalls, 1)
    }

    func testMismatchedResidualsThrowNamingTheShapes() throws {
        var rng = RNG(seed: 13)
        let matmul = try DNNLMatmul(weight: tensor([4, 6], &rng), bias: nil, precision: .fp32)
        XCTAssertThrowsError(try matmul.forward(tensor([2, 6], &rng), adding: tensor([2, 5], &rng))) { error in
            XCTAssertEqual(error.localizedDescription, "residual [2, 5] does not match the layer output [2, 4]")
        }
        let conv = try DNNLConvolution(weight: tensor([4, 3, 3, 3], &rng), bias: nil, stride: 1, padding: 1, precision: .fp32)
        XCTAssertThrowsError(try conv.forward(FeatureMap(tensor([1, 5, 5, 3], &rng)), adding: FeatureMap(tensor([1, 5, 4, 4], &rng)))) { error in
            XCTAssertEqual(error.localizedDescription, "residual [1, 5, 4, 4] does not match the layer output [1, 5, 5, 4]")
        }
    }
}
