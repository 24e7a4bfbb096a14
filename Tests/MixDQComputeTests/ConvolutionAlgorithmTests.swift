import XCTest
import MixDQCompute

/// `ConvolutionAlgorithm.auto`: fp32 3x3 stride-1 convolutions with >= 64 channels, >= 32x32
/// outputs and <= 4 Mi input elements per sample run as oneDNN Winograd where the CPU has it
/// (AVX-512), direct elsewhere. Checked against
/// an fp64 convolution written out here, for both algorithms, with the same error bound.
final class ConvolutionAlgorithmTests: XCTestCase {
    private struct Case {
        let weight: Tensor, bias: Tensor, input: FeatureMap
    }

    private func makeCase(inChannels: Int, outChannels: Int, height: Int, width: Int, seed: UInt64) -> Case {
        var g = SplitMix64(seed: seed)
        func randn(_ shape: [Int], _ scale: Float) -> Tensor {
            let t = Tensor(uninitializedShape: shape)
            for i in 0..<t.count { t.data[i] = g.nextGaussian() * scale }
            return t
        }
        return Case(weight: randn([outChannels, inChannels, 3, 3], 1 / Float(inChannels * 9).squareRoot()),
                    bias: randn([outChannels], 0.1), input: FeatureMap(randn([1, height, width, inChannels], 1)))
    }

    /// y[p, o] in fp64 and Σ|w||x| + |b| per output (the scale of fp32 rounding error), padding 1.
    private func reference(_ c: Case) -> (y: [Double], magnitude: [Double]) {
        let (h, w, ci, co) = (c.input.height, c.input.width, c.input.channels, c.weight.shape[0])
        var y = [Double](repeating: 0, count: h * w * co), mag = y
        for oy in 0..<h { for ox in 0..<w { for o in 0..<co {
            var s = Double(c.bias.data[o]), m = abs(Double(c.bias.data[o]))
            for ky in 0..<3 { for kx in 0..<3 {
                let (iy, ix) = (oy + ky - 1, ox + kx - 1)
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                let xBase = (iy * w + ix) * ci
                for i in 0..<ci {
                    let prod = Double(c.weight.data[((o * ci + i) * 3 + ky) * 3 + kx]) * Double(c.input.tensor.data[xBase + i])
                    s += prod; m += abs(prod)
                }
            }}
            y[(oy * w + ox) * co + o] = s; mag[(oy * w + ox) * co + o] = m
        }}}
        return (y, mag)
    }

    private func convolution(_ c: Case, _ algorithm: ConvolutionAlgorithm) throws -> DNNLConvolution {
        try DNNLConvolution(weight: c.weight, bias: c.bias, stride: 1, padding: 1, precision: .fp32, algorithm: algorithm)
    }

    /// Worst |y - ref| / (u Σ|w||x|), u = 2^-24. Direct summation in any order stays below K + 1
    /// (K = 9 C_in terms); Winograd's transforms multiply that by a constant of the F(m, r) points.
    private func worstErrorRatio(_ out: FeatureMap, _ ref: (y: [Double], magnitude: [Double])) -> Double {
        let u = Double(Float.ulpOfOne) / 2
        var worst = 0.0
        for i in 0..<ref.y.count { worst = max(worst, abs(Double(out.tensor.data[i]) - ref.y[i]) / (u * ref.magnitude[i])) }
        return worst
    }

    private var winogradAvailable: Bool { CPUInfo.current.onednnISA.contains("avx512") }

    func testWinogradAndDirectAgreeWithFloat64() throws {
        let c = makeCase(inChannels: 64, outChannels: 80, height: 34, width: 33, seed: 11)
        let ref = reference(c)
        let auto = try convolution(c, .auto)
        let yAuto = try auto.forward(c.input)
        let direct = try convolution(c, .direct)
        let yDirect = try direct.forward(c.input)
        XCTAssertFalse(direct.implementation.contains("wino"), direct.implementation)
        if winogradAvailable {
            XCTAssertTrue(auto.implementation.contains("wino"), "expected Winograd on \(CPUInfo.current.summary), got \(auto.implementation)")
        } else {
            XCTAssertFalse(auto.implementation.contains("wino"), auto.implementation)
        }
        let (ra, rd) = (worstErrorRatio(yAuto, ref), worstErrorRatio(yDirect, ref))
        print(String(format: "conv 64->80 3x3 on 34x33: worst |err|/(u Σ|w||x|) %@ %.2f (%@), direct %.2f; K = 576",
                     "auto", ra, auto.implementation, rd))
        // Measured 2-4 for direct and Winograd alike; the bound allows Winograd's transform constants.
        XCTAssertLessThan(rd, 577, "direct exceeds the γ_K bound")
        XCTAssertLessThan(ra, 64, "the Winograd result is further from fp64 than its transforms explain")
        XCTAssertGreaterThan(ra, 0, "no rounding at all: the comparison is not looking at the output")
    }

    /// A UNet shape (320 channels at 64x64, where oneDNN picks F(4x4,3x3) on AVX-512): too large for
    /// the fp64 loop in a debug build, so Winograd is held to direct (checked against fp64 above)
    /// with the same scale, Σ|w||x| + |b|, computed by a direct convolution of |w| over |x|.
    func testWinogradAtAUNetShapeAgreesWithDirect() throws {
        let c = makeCase(inChannels: 320, outChannels: 320, height: 64, width: 64, seed: 16)
        let auto = try convolution(c, .auto)
        let yAuto = try auto.forward(c.input)
        let yDirect = try convolution(c, .direct).forward(c.input)
        func absolute(_ t: Tensor) -> Tensor {
            let a = Tensor(uninitializedShape: t.shape)
            for i in 0..<t.count { a.data[i] = abs(t.data[i]) }
            return a
        }
        let magnitude = try DNNLConvolution(weight: absolute(c.weight), bias: absolute(c.bias), stride: 1, padding: 1, precision: .fp32,
                                            algorithm: .direct)
            .forward(FeatureMap(absolute(c.input.tensor)))
        let u = Double(Float.ulpOfOne) / 2
        var worst = 0.0
        for i in 0..<yAuto.tensor.count {
            worst = max(worst, abs(Double(yAuto.tensor.data[i]) - Double(yDirect.tensor.data[i])) / (u * Double(magnitude.tensor.data[i])))
        }
        print(String(format: "conv 320->320 3x3 on 64x64: worst |auto - direct|/(u Σ|w||x|) %.2f (%@)", worst, auto.implementation))
        XCTAssertEqual(auto.implementation.contains("wino"), winogradAvailable, auto.implementation)
        XCTAssertLessThan(worst, 64)
        if winogradAvailable { XCTAssertGreaterThan(worst, 0, "Winograd and direct agree bit for bit: one of them did not run") }
    }

    func testAWinogradLayerServesSeveralInputSizes() throws {
        let c = makeCase(inChannels: 64, outChannels: 64, height: 32, width: 32, seed: 12)
        let layer = try convolution(c, .auto)
        let first = try layer.forward(c.input)
        layer.releaseMasterWeight()  // a Winograd layer keeps what another input size needs
        for (h, w, seed) in [(40, 36, UInt64(13)), (32, 32, UInt64(12)), (8, 8, UInt64(14))] {
            let other = makeCase(inChannels: 64, outChannels: 64, height: h, width: w, seed: seed)
            let ref = reference(Case(weight: c.weight, bias: c.bias, input: other.input))
            let y = try layer.forward(other.input)
            XCTAssertLessThan(worstErrorRatio(y, ref), 64, "\(h)x\(w) after the layer first ran 32x32")
            if h == 32 {
                XCTAssertEqual(Array(UnsafeBufferPointer(start: y.tensor.data, count: y.tensor.count)),
                               Array(UnsafeBufferPointer(start: first.tensor.data, count: first.tensor.count)),
                               "the same input gives the same output after another size was packed")
            }
        }
    }

    /// Too few channels or output pixels, and inputs above 4 Mi elements per sample (Winograd's
    /// transformed tiles grow with them), run direct.
    func testSmallLayersAndLargeInputsStayDirect() throws {
        XCTAssertEqual(ConvolutionAlgorithm.maximumWinogradInputElements, 64 * 256 * 256)
        for (ci, co, hw) in [(32, 64, 32), (64, 64, 16), (64, 4, 32), (64, 64, 257)] {
            let c = makeCase(inChannels: ci, outChannels: co, height: hw, width: hw, seed: 15)
            let layer = try convolution(c, .auto)
            _ = try layer.forward(c.input)
            XCTAssertFalse(layer.implementation.contains("wino"), "\(ci)->\(co) on \(hw)x\(hw): \(layer.implementation)")
        }
    }

    func testTheEnvironmentVariable() throws {
        XCTAssertEqual(try ConvolutionAlgorithm.fromEnvironment([:]), .auto)
        XCTAssertEqual(try DNNLConvolution(weight: Tensor(shape: [4, 4, 3, 3], repeating: 0), bias: nil, stride: 1, padding: 1,
                                           precision: .fp32).algorithm, ConvolutionAlgorithm.current, "a layer takes the process-wide choice")
        XCTAssertEqual(try ConvolutionAlgorithm.fromEnvironment(["MIXDQ_CONV_ALGORITHM": "DIRECT"]), .direct)
        XCTAssertEqual(try ConvolutionAlgorithm.fromEnvironment(["MIXDQ_CONV_ALGORITHM": "auto"]), .auto)
        XCTAssertThrowsError(try ConvolutionAlgorithm.fromEnvironment(["MIXDQ_CONV_ALGORITHM": "winograd-always"])) { error in
            XCTAssertEqual(error.localizedDescription,
                           "MIXDQ_CONV_ALGORITHM=winograd-always is not a convolution algorithm; use one of: auto, direct")
        }
    }
}
