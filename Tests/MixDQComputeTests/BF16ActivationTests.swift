import CKernels
import XCTest
import MixDQCompute

/// bf16 activations handed from layer to layer: GEGLU rounded straight into a bf16 matmul's input,
/// and one rounded copy shared by the linears that read the same input. Both must give the bits the
/// unfused path gives (GEGLU in fp32, then each matmul rounding its own input).
final class BF16ActivationTests: XCTestCase {
    func random(_ shape: [Int], seed: UInt64, amplitude: Float = 3) -> Tensor { TestTensors.uniform(shape, seed: seed, amplitude: amplitude) }

    func bits(_ t: Tensor) -> [UInt32] { (0..<t.count).map { t.data[$0].bitPattern } }

    /// Odd widths (masked tails), every kernel ISA: the fused kernel against GEGLU then rounding.
    func testGEGLUIntoBF16IsGEGLUThenRounding() throws {
        for (rows, inner) in [(3, 37), (2, 1280), (1, 5), (4, 16)] {
            let proj = random([rows, 2 * inner], seed: UInt64(inner))
            proj.data[0] = .nan; proj.data[2 * inner - 1] = -.infinity; proj.data[inner] = Float.leastNormalMagnitude / 3  // subnormal
            forEachISA { isa in
                var fused = [UInt16](repeating: 0, count: rows * inner), expected = fused
                XCTAssertEqual(mdq_geglu_bf16(proj.data, &fused, rows, inner), 0)
                var h = [Float](repeating: 0, count: rows * inner)
                mdq_geglu(proj.data, &h, rows, inner)
                mdq_f32_to_bf16(h, &expected, rows * inner)
                XCTAssertEqual(fused, expected, "\(isa) rows \(rows) inner \(inner)")
            }
        }
    }

    func testMatmulTakesGEGLUAndSharedInputWithTheSameBits() throws {
        guard Precision.bf16.isAvailable else { throw XCTSkip("no oneDNN bf16 on this CPU (\(CPUInfo.current.summary))") }
        let (inFeatures, outFeatures) = (48, 40)
        let matmul = try DNNLMatmul(weight: random([outFeatures, inFeatures], seed: 1, amplitude: 0.2),
                                    bias: random([outFeatures], seed: 2), precision: .bf16)
        XCTAssertTrue(matmul.takesBF16Input)
        // GEGLU fused, with and without the residual add, against GEGLU then forward then add.
        let proj = random([2, 7, 2 * inFeatures], seed: 3), residual = random([2, 7, outFeatures], seed: 4)
        let h = Ops.geglu(proj)
        XCTAssertEqual(bits(try matmul.forward(gegluOf: proj, adding: nil)), bits(try matmul.forward(h)))
        let unfused = try matmul.forward(h)
        Ops.addInPlace(unfused, residual)
        XCTAssertEqual(bits(try matmul.forward(gegluOf: proj, adding: residual)), bits(unfused))
        // A shared rounded copy against each layer rounding its own input.
        let x = random([2, 9, inFeatures], seed: 5)
        let shared = BF16Activation(rounding: x)
        XCTAssertEqual(bits(try matmul.forward(bf16: shared)), bits(try matmul.forward(x)))
        XCTAssertThrowsError(try DNNLMatmul(weight: random([4, 8], seed: 6), bias: nil, precision: .fp32).forward(bf16: BF16Activation(rounding: random([1, 8], seed: 7))))
    }

    /// `Linear` uses a shared copy only where its kernel takes one and no input hook has to see the
    /// fp32 input; a copy of another input's shape is an error naming the layer.
    func testLinearSharesOnlyWhereItCan() throws {
        guard Precision.bf16.isAvailable else { throw XCTSkip("no oneDNN bf16 on this CPU (\(CPUInfo.current.summary))") }
        let layer = Linear(path: "mid_block.attentions.0.transformer_blocks.0.attn1.to_q", weight: random([16, 32], seed: 8, amplitude: 0.3), bias: nil)
        let x = random([1, 5, 32], seed: 9)
        XCTAssertFalse(layer.takesBF16Input)  // fp32 kernel
        XCTAssertNil(BF16Activation.shared(x, by: [layer, layer]))
        try layer.usePrecision(.bf16)
        XCTAssertTrue(layer.takesBF16Input)
        XCTAssertNil(BF16Activation.shared(x, by: [layer]), "one reader rounds its own input")
        let shared = try XCTUnwrap(BF16Activation.shared(x, by: [layer, layer]))
        XCTAssertEqual(bits(try layer(x, sharing: shared)), bits(try layer(x)))
        var seen = 0
        layer.inputHook = { _ in seen += 1 }
        XCTAssertFalse(layer.takesBF16Input)
        _ = try layer(x, sharing: shared)
        XCTAssertEqual(seen, 1, "the hook sees the fp32 input")
        layer.inputHook = nil
        XCTAssertThrowsError(try layer(random([1, 6, 32], seed: 10), sharing: shared)) { error in
            XCTAssertTrue("\(error)".contains("attn1.to_q"), "\(error)")
        }
    }
}
