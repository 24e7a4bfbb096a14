import Foundation
import XCTest
import MixDQCompute
import MixDQQuant

/// Integer weight codes from the quantizer (what integer backends run) against the fake-quantized
/// weights they must reproduce, and one W8A8 oneDNN layer built from them against fake quant.
final class IntegerWeightsTests: XCTestCase {
    func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var s = seed
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            t.data[i] = Float(Int64(bitPattern: s >> 11) % 20001 - 10000) / 10000 * scale
        }
        return t
    }

    func testCodesTimesScaleAreTheFakeQuantizedWeightsBitForBit() throws {
        let linear = Linear(path: "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2", weight: random([7, 13], seed: 1, scale: 3),
                            bias: random([7], seed: 2))
        let conv = try Conv2d(path: "up_blocks.0.resnets.0.conv_shortcut", weight: random([5, 6, 1, 1], seed: 3), bias: nil)
        conv.role = .concatShortcut(split: 4)
        let registry = LayerRegistry()
        registry.register(linear)
        registry.register(conv)
        let sim = try QuantSimulator(registry: registry, settings: QuantSettings())
        try sim.calibrateWeights()
        for state in sim.layers {
            for bits in [2, 4, 8] {
                let iw = try state.integerWeights(bits: bits)
                let fake = try state.quantizedWeight(bits: bits)
                let rowLength = fake.count / fake.shape[0]
                XCTAssertEqual(iw.parts.count, state.path.hasSuffix("conv_shortcut") ? 2 : 1)
                let lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1
                for (columns, scales) in iw.parts {
                    for r in 0..<fake.shape[0] { for c in columns {
                        let i = r * rowLength + c
                        XCTAssertTrue((lo...hi).contains(Int(iw.codes[i])), "\(state.path) \(bits)-bit code \(iw.codes[i])")
                        XCTAssertEqual((Float(iw.codes[i]) * scales[r]).bitPattern, fake.data[i].bitPattern,
                                       "\(state.path) \(bits) bits [\(r), \(c)]")
                    } }
                }
            }
        }
        XCTAssertThrowsError(try sim.layers[0].integerWeights(bits: 3)) { XCTAssertTrue("\($0)".contains("ff.net.2"), "\($0)") }
    }

    func testAsymmetricWeightsHaveNoIntegerCodes() throws {
        let linear = Linear(path: "conv_in_like", weight: random([3, 4], seed: 4), bias: nil)
        let registry = LayerRegistry()
        registry.register(linear)
        let sim = try QuantSimulator(registry: registry, settings: QuantSettings(weightSymmetric: false))
        try sim.calibrateWeights()
        XCTAssertThrowsError(try sim.layers[0].integerWeights(bits: 8)) { XCTAssertTrue("\($0)".contains("asymmetric"), "\($0)") }
    }

    /// The quantizer's codes and observer parameters run on the oneDNN W8A8 kernel give the fake-quant
    /// layer's output up to float rounding: fake quant rounds each of K products and K + 1 sums
    /// (γ_{K+3} with γ_n = n·u / (1 − n·u), u = 2^-24, counting the dequantized operands), the integer
    /// path rounds the int→float conversion, Δx·Δw, the product and the bias add (γ_4); both bounded by
    /// S = Σ_k |q_x − z|·|q_w|·Δx·Δw[c] plus |b|.
    func testW8A8KernelFromQuantizerMatchesFakeQuantWithinRounding() throws {
        let (k, n, rows) = (96, 24, 10)
        let weight = random([n, k], seed: 5, scale: 0.2), bias = random([n], seed: 6)
        let linear = Linear(path: "mid_block.attentions.0.transformer_blocks.0.attn1.to_q", weight: weight, bias: bias)
        let registry = LayerRegistry()
        registry.register(linear)
        let sim = try QuantSimulator(registry: registry, settings: QuantSettings())
        try sim.calibrateWeights()
        sim.setQuantState(weight: true, activation: true)
        sim.setCalibratingActivations(true)
        let x = random([rows, k], seed: 7, scale: 4)
        for i in 0..<k { x.data[i] = abs(x.data[i]) }          // a one-signed stretch, for the zero point
        _ = try linear(x)
        sim.setCalibratingActivations(false)
        let fake = try linear(x)

        let state = sim.layers[0]
        let iw = try state.integerWeights(bits: 8)
        let (dx, zp) = state.observers[0].parameters(bits: 8)
        let kernel = try Int8LinearKernel(name: state.path, weightCodes: iw.codes, outFeatures: n, inFeatures: k,
                                          weightScales: iw.parts[0].scales, inputScale: dx, inputZeroPoint: Int(zp), bias: bias)
        let got = try kernel.forward(x)

        func gamma(_ m: Int) -> Double { let u = pow(2.0, -24.0); return Double(m) * u / (1 - Double(m) * u) }
        var worst = 0.0
        for r in 0..<rows { for c in 0..<n {
            var s = 0.0
            for j in 0..<k {
                let q = min(max((x.data[r * k + j] / dx).rounded(.toNearestOrEven) + zp, 0), 255)
                s += abs(Double(q - zp)) * abs(Double(iw.codes[c * k + j])) * Double(dx) * Double(iw.parts[0].scales[c])
            }
            let bound = (gamma(k + 3) + gamma(4)) * (s + abs(Double(bias.data[c])))
            let err = abs(Double(got.data[r * n + c]) - Double(fake.data[r * n + c]))
            XCTAssertLessThanOrEqual(err, bound, "[\(r), \(c)]")
            worst = max(worst, err / max(bound, 1e-30))
        } }
        print(String(format: "W8A8 oneDNN layer from quantizer codes vs fake quant: worst error %.3f of the rounding bound (%@)",
                     worst, CPUInfo.current.summary as NSString))
    }
}
