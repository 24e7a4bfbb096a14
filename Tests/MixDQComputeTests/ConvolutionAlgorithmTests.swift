import XCTest
import MixDQCompute

/// `ConvolutionAlgorithm.auto`: fp32 3x3 stride-1 convolutions with >= 64 channels and >= 32x32
/// outputs run as oneDNN Winograd where the CPU has it (AVX-512), direct elsewhere; inputs above
/// 4 Mi elements per sample run in bands of rows. Checked against
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

    /// Too few channels or output pixels run direct.
    func testSmallLayersStayDirect() throws {
        for (ci, co, hw) in [(32, 64, 32), (64, 64, 16), (64, 4, 32)] {
            let c = makeCase(inChannels: ci, outChannels: co, height: hw, width: hw, seed: 15)
            let layer = try convolution(c, .auto)
            _ = try layer.forward(c.input)
            XCTAssertFalse(layer.implementation.contains("wino"), "\(ci)->\(co) on \(hw)x\(hw): \(layer.implementation)")
            XCTAssertNil(layer.winogradBandCount(height: hw, width: hw))
        }
    }

    /// The band geometry written out for a 34-row input, padding 1, 8 output rows per band: each
    /// band reads its rows plus one above and one below; the first band's row above and the last
    /// band's rows below are the zero padding.
    func testWinogradBandsCoverEveryOutputRowOnce() throws {
        // 64 channels x 33 columns x 10 staged rows = the limit: 8 output rows + 2 halo rows.
        let bands = try XCTUnwrap(WinogradBands(channels: 64, inputHeight: 34, inputWidth: 33, kernelSize: 3, padding: 1,
                                                maximumElements: 64 * 33 * 10))
        XCTAssertEqual(bands.rowsPerBand, 8)
        XCTAssertEqual(bands.stagedRows, 10)
        XCTAssertEqual(bands.bands, [
            .init(outputStart: 0, outputRows: 8, inputStart: 0, inputRows: 9, stagingOffset: 1),
            .init(outputStart: 8, outputRows: 8, inputStart: 7, inputRows: 10, stagingOffset: 0),
            .init(outputStart: 16, outputRows: 8, inputStart: 15, inputRows: 10, stagingOffset: 0),
            .init(outputStart: 24, outputRows: 8, inputStart: 23, inputRows: 10, stagingOffset: 0),
            .init(outputStart: 32, outputRows: 2, inputStart: 31, inputRows: 3, stagingOffset: 0),
        ])
        XCTAssertEqual(bands.bands.map { bands.needsZeros($0) }, [true, false, false, false, true])
        // Without padding ("valid"): 32 output rows, each band reading its own rows and the 2 below.
        XCTAssertEqual(WinogradBands(channels: 64, inputHeight: 34, inputWidth: 33, kernelSize: 3, padding: 0,
                                     maximumElements: 64 * 33 * 10)?.bands,
                       [0, 8, 16, 24].map { .init(outputStart: $0, outputRows: 8, inputStart: $0, inputRows: 10, stagingOffset: 0) })
        // Padding beyond half the kernel would leave bands with no source row: one call instead.
        XCTAssertNil(WinogradBands(channels: 64, inputHeight: 34, inputWidth: 33, kernelSize: 3, padding: 2, maximumElements: 64 * 33 * 10))
        // Rows per band round down to Winograd's 4-row tiles (11 staged rows fit: 9 -> 8), and never below 4.
        XCTAssertEqual(WinogradBands(channels: 64, inputHeight: 34, inputWidth: 33, kernelSize: 3, padding: 1,
                                     maximumElements: 64 * 33 * 11)?.rowsPerBand, 8)
        XCTAssertEqual(WinogradBands(channels: 64, inputHeight: 34, inputWidth: 33, kernelSize: 3, padding: 1,
                                     maximumElements: 1)?.rowsPerBand, 4)
        // An input within the limit is one call; one element above it, 31 staged rows fit (28 output
        // rows), so 2 bands, evened out to 17 rows and rounded up to the tile: 20 + 14.
        XCTAssertNil(WinogradBands(channels: 64, inputHeight: 34, inputWidth: 33, kernelSize: 3, padding: 1,
                                   maximumElements: 64 * 34 * 33))
        XCTAssertEqual(WinogradBands(channels: 64, inputHeight: 34, inputWidth: 33, kernelSize: 3, padding: 1,
                                     maximumElements: 64 * 34 * 33 - 1)?.bands.map(\.outputRows), [20, 14])
        // A VAE decoder's 512-channel 128x128 map under the default 4 Mi: 64 staged rows fit (60 output
        // rows), 3 bands of 128 / 3 -> 44 rows rather than 60 + 60 + 8.
        XCTAssertEqual(WinogradBands(channels: 512, inputHeight: 128, inputWidth: 128, kernelSize: 3, padding: 1,
                                     maximumElements: ConvolutionAlgorithm.maximumWinogradInputElements)?.bands.map(\.outputRows),
                       [44, 44, 40])
    }

    /// A layer whose input exceeds its Winograd limit runs band by band (here 5 bands of at most 8
    /// rows, two samples) and stays within the Winograd bound of fp64, sample by sample.
    func testBandedWinogradAgreesWithFloat64() throws {
        let cases = [makeCase(inChannels: 64, outChannels: 80, height: 34, width: 33, seed: 21),
                     makeCase(inChannels: 64, outChannels: 80, height: 34, width: 33, seed: 22)]
        let batch = FeatureMap(batch: 2, height: 34, width: 33, channels: 64)
        let perSample = cases[0].input.tensor.count
        for (i, c) in cases.enumerated() { batch.tensor.data.advanced(by: i * perSample).update(from: c.input.tensor.data, count: perSample) }
        let layer = try DNNLConvolution(weight: cases[0].weight, bias: cases[0].bias, stride: 1, padding: 1, precision: .fp32,
                                        algorithm: .auto, winogradInputLimit: 64 * 33 * 10)
        let y = try layer.forward(batch)
        if winogradAvailable {
            XCTAssertEqual(layer.winogradBandCount(height: 34, width: 33, batch: 2), 5, layer.implementation)
        } else {
            XCTAssertNil(layer.winogradBandCount(height: 34, width: 33, batch: 2), layer.implementation)
        }
        let outPerSample = 34 * 33 * 80
        for (i, c) in cases.enumerated() {
            let sample = FeatureMap(batch: 1, height: 34, width: 33, channels: 80)
            sample.tensor.data.update(from: y.tensor.data.advanced(by: i * outPerSample), count: outPerSample)
            let ratio = worstErrorRatio(sample, reference(Case(weight: cases[0].weight, bias: cases[0].bias, input: c.input)))
            print(String(format: "banded conv 64->80 3x3 on 34x33, sample %d: worst |err|/(u Σ|w||x|) %.2f (%@)", i, ratio, layer.implementation))
            XCTAssertLessThan(ratio, 64, "sample \(i)")
            XCTAssertGreaterThan(ratio, 0, "sample \(i): no rounding at all: the comparison is not looking at the output")
        }
    }

    /// The default limit: 4 Mi input elements per sample; a 257x257 map of 64 channels is above it.
    func testLargeInputsRunInBands() throws {
        XCTAssertEqual(ConvolutionAlgorithm.maximumWinogradInputElements, 64 * 256 * 256)
        let c = makeCase(inChannels: 64, outChannels: 64, height: 257, width: 257, seed: 15)
        let layer = try convolution(c, .auto)
        _ = try layer.forward(c.input)
        // 4 Mi / (64 x 257) = 255 staged rows, at most 252 output rows: 2 bands of 132 and 125 rows.
        XCTAssertEqual(layer.winogradBandCount(height: 257, width: 257), winogradAvailable ? 2 : nil, layer.implementation)
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
