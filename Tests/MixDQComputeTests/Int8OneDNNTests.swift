import CKernels
import MixDQCompute
import Foundation
import XCTest

/// oneDNN INT8 matmul / convolution and the W8A8 layer kernels: s32 products bit-exact against the
/// scalar integer references (on both the direct and the 7-bit split path where the CPU makes the
/// direct one exact), fp32 outputs bit-exact against reference GEMM + reference epilogue, and the
/// layers against fp32 fake quantization within a derived rounding bound.
final class Int8OneDNNTests: XCTestCase {
    typealias RNG = KernelTests.SplitMix64

    /// The paths whose s32 results must be exact here for 8-bit weight codes: the default, the split
    /// path always, and the direct path where oneDNN has VNNI.
    static var exactPaths: [Bool?] { Int8ActivationSplit.cpuLacksVNNI ? [nil, true] : [nil, true, false] }

    func codesU8(_ n: Int, _ rng: inout RNG) -> [UInt8] {
        // Full range, with runs of the extremes that saturate int16 pair sums without VNNI.
        (0..<n).map { i in i % 7 == 0 ? 255 : UInt8(truncatingIfNeeded: rng.next()) }
    }

    func codesS8(_ n: Int, _ rng: inout RNG) -> [Int8] {
        (0..<n).map { i in i % 5 == 0 ? (i % 2 == 0 ? 127 : -128) : Int8(truncatingIfNeeded: rng.next()) }
    }

    // MARK: - s32 products

    func testMatmulS32MatchesReference() throws {
        var rng = RNG(seed: 91)
        for (m, k, n) in [(1, 1, 1), (3, 17, 5), (7, 64, 33), (13, 129, 65), (40, 300, 17), (2, 1000, 3)] {
            let a = codesU8(m * k, &rng), w = codesS8(n * k, &rng)
            var want = [Int32](repeating: 0, count: m * n)
            mdq_gemm_u8s8s32_ref(m, n, k, a, w, &want)
            for split in Self.exactPaths {
                let mm = try DNNLInt8Matmul(weightCodes: w, outFeatures: n, inFeatures: k, splitActivations: split)
                var got = [Int32](repeating: -1, count: m * n)
                try mm.accumulate(a, rows: m, into: &got)
                let impl = try mm.implementation(rows: m)
                XCTAssertEqual(got, want, "matmul \(m)x\(k)x\(n) split \(String(describing: split)) (\(impl))")
            }
        }
    }

    /// Documents why the split exists: without VNNI the direct u8 x s8 path saturates (255 x 127 x 2
    /// exceeds int16). Only asserted where oneDNN runs without VNNI (e.g. ONEDNN_MAX_CPU_ISA=AVX2).
    func testDirectPathSaturatesWithoutVNNI() throws {
        guard Int8ActivationSplit.cpuLacksVNNI else { return }
        let k = 64
        let mm = try DNNLInt8Matmul(weightCodes: [Int8](repeating: 127, count: k), outFeatures: 1, inFeatures: k, splitActivations: false)
        var got: [Int32] = [0]
        try mm.accumulate([UInt8](repeating: 255, count: k), rows: 1, into: &got)
        let impl = try mm.implementation(rows: 1)
        print("without VNNI (\(CPUInfo.current.onednnISA)), \(impl) gives \(got[0]) for 255 x 127 x \(k) = \(255 * 127 * k)")
        XCTAssertNotEqual(got[0], Int32(255 * 127 * k), "oneDNN \(impl) was exact without VNNI; the split may be unneeded")
    }

    /// Weight codes within [-64, 64] (7 bits or fewer) cannot saturate the int16 pair sums, so they run
    /// direct on every CPU and stay exact with full-range activations; 8-bit codes split exactly where
    /// oneDNN lacks VNNI.
    func testNarrowWeightCodesRunDirectAndExact() throws {
        var rng = RNG(seed: 97)
        let (m, k, n) = (9, 200, 11)
        let a = codesU8(m * k, &rng)
        let narrow = (0..<(n * k)).map { i in i % 3 == 0 ? Int8(i % 2 == 0 ? 64 : -64) : Int8(Int(rng.next() % 129) - 64) }
        var want = [Int32](repeating: 0, count: m * n)
        mdq_gemm_u8s8s32_ref(m, n, k, a, narrow, &want)
        let mm = try DNNLInt8Matmul(weightCodes: narrow, outFeatures: n, inFeatures: k)
        XCTAssertFalse(mm.splitsActivations)
        var got = [Int32](repeating: -1, count: m * n)
        try mm.accumulate(a, rows: m, into: &got)
        let impl = try mm.implementation(rows: m)
        XCTAssertEqual(got, want, "direct matmul with codes in [-64, 64] (\(impl))")

        let (h, w, c, o) = (6, 5, 24, 4)
        let convCodes = Array(narrow.prefix(o * c * 9))
        let x = codesU8(h * w * c, &rng)
        let conv = try DNNLInt8Convolution(weightCodes: convCodes, outChannels: o, inChannels: c, kernelSize: 3, stride: 1, padding: 1)
        XCTAssertFalse(conv.splitsActivations)
        var convWant = [Int32](repeating: 0, count: h * w * o)
        mdq_conv_u8s8s32_ref(x, 1, h, w, c, convCodes, o, 3, 1, 1, 255, &convWant)
        let input = try conv.makeInput(batch: 1, height: h, width: w, padCode: 255)
        x.withUnsafeBufferPointer { input.fill(from: $0.baseAddress!) }
        var convGot = [Int32](repeating: -1, count: convWant.count)
        try conv.accumulate(input, into: &convGot)
        let convImpl = try conv.implementation(batch: 1, height: h, width: w)
        XCTAssertEqual(convGot, convWant, "direct convolution with codes in [-64, 64] (\(convImpl))")

        let wide = try DNNLInt8Matmul(weightCodes: codesS8(n * k, &rng), outFeatures: n, inFeatures: k)
        XCTAssertEqual(wide.splitsActivations, Int8ActivationSplit.cpuLacksVNNI)
    }

    func testConvolutionS32MatchesReference() throws {
        var rng = RNG(seed: 92)
        // (batch, h, w, in, out, kernel, stride, padding)
        let shapes = [(1, 5, 7, 3, 4, 3, 1, 1), (2, 9, 6, 8, 5, 3, 2, 1), (1, 4, 4, 16, 8, 1, 1, 0), (1, 7, 7, 5, 3, 3, 2, 0),
                      (1, 1, 1, 2, 3, 3, 1, 1), (1, 8, 8, 33, 17, 1, 2, 0), (1, 6, 5, 64, 7, 3, 1, 1)]
        for (n, h, w, c, o, k, s, p) in shapes {
            let x = codesU8(n * h * w * c, &rng), wt = codesS8(o * c * k * k, &rng)
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            for z in [0, 128, 255] {
                var want = [Int32](repeating: 0, count: n * oh * ow * o)
                mdq_conv_u8s8s32_ref(x, n, h, w, c, wt, o, k, s, p, UInt8(z), &want)
                for split in Self.exactPaths {
                    let conv = try DNNLInt8Convolution(weightCodes: wt, outChannels: o, inChannels: c, kernelSize: k, stride: s,
                                                       padding: p, splitActivations: split)
                    let input = try conv.makeInput(batch: n, height: h, width: w, padCode: UInt8(z))
                    x.withUnsafeBufferPointer { input.fill(from: $0.baseAddress!) }
                    var got = [Int32](repeating: -1, count: want.count)
                    try conv.accumulate(input, into: &got)
                    let impl = try conv.implementation(batch: n, height: h, width: w)
                    XCTAssertEqual(got, want, "conv \(n)x\(h)x\(w)x\(c)->\(o) k\(k) s\(s) p\(p) z\(z) split \(String(describing: split)) (\(impl))")
                }
            }
        }
    }

    // MARK: - layer kernels: bit-exact against the scalar pipeline

    func logUniformScales(_ n: Int, _ rng: inout RNG, lo: Double = -6, hi: Double = 2) -> [Float] {
        (0..<n).map { _ in Float(pow(10.0, lo + (hi - lo) * rng.unit())) }
    }

    /// Activations spread over the whole code range of (delta, z) and a little beyond (clamping).
    func activations(_ n: Int, delta: Float, zeroPoint: Int, _ rng: inout RNG) -> [Float] {
        (0..<n).map { _ in rng.uniform(Double(-zeroPoint - 8), Double(263 - zeroPoint)) * delta }
    }

    /// Scalar pipeline: reference quantizer, reference epilogue over the given s32 products.
    func referenceOutput(x: [Float], acc: [Int32], rows: Int, outputs: Int, codes: [Int8], delta: Float, zeroPoint: Int,
                         weightScales: [Float], bias: [Float]?) -> [Float] {
        let reduction = codes.count / outputs
        let wsum = (0..<outputs).map { o in Int32(codes[(o * reduction)..<((o + 1) * reduction)].reduce(0) { $0 + Int($1) }) }
        let scales = weightScales.map { delta * $0 }
        var y = [Float](repeating: .nan, count: rows * outputs)
        mdq_dequant_s32_rows_ref(acc, &y, rows, outputs, Int32(zeroPoint), wsum, scales, bias, nil)
        return y
    }

    func testLinearKernelBitExactAgainstScalarPipeline() throws {
        var rng = RNG(seed: 93)
        for (m, k, n) in [(1, 3, 2), (5, 77, 19), (33, 640, 40)] {
            for z in [0, 128, 255] {
                let delta = Float(pow(10.0, -3.0 + 3.0 * rng.unit()))
                let codes = codesS8(n * k, &rng), ws = logUniformScales(n, &rng)
                let bias = (0..<n).map { _ in rng.mixed() }
                let x = activations(m * k, delta: delta, zeroPoint: z, &rng)
                var q = [UInt8](repeating: 0, count: m * k)
                mdq_quantize_u8_ref(x, &q, x.count, delta, Float(z), 255)
                var acc = [Int32](repeating: 0, count: m * n)
                mdq_gemm_u8s8s32_ref(m, n, k, q, codes, &acc)
                for withBias in [false, true] {
                    let want = referenceOutput(x: x, acc: acc, rows: m, outputs: n, codes: codes, delta: delta, zeroPoint: z,
                                               weightScales: ws, bias: withBias ? bias : nil)
                    for split in Self.exactPaths {
                        let layer = try Int8LinearKernel(name: "test.linear", weightCodes: codes, outFeatures: n, inFeatures: k, weightScales: ws,
                                                         inputScale: delta, inputZeroPoint: z, bias: withBias ? Tensor(shape: [n], values: bias) : nil,
                                                         splitActivations: split)
                        let y = try layer.forward(Tensor(shape: [m, k], values: x))
                        XCTAssertEqual(y.shape, [m, n])
                        XCTAssertEqual(y.scalars.map(\.bitPattern), want.map(\.bitPattern), "linear \(m)x\(k)x\(n) z\(z) bias \(withBias) split \(String(describing: split))")
                    }
                }
            }
        }
    }

    func testConvKernelBitExactAgainstScalarPipeline() throws {
        var rng = RNG(seed: 94)
        for (n, h, w, c, o, k, s, p) in [(1, 5, 7, 3, 4, 3, 1, 1), (2, 9, 6, 8, 5, 3, 2, 1), (1, 4, 5, 16, 8, 1, 1, 0), (1, 7, 7, 5, 3, 3, 2, 0)] {
            for z in [0, 128, 255] {
                let delta = Float(pow(10.0, -3.0 + 3.0 * rng.unit()))
                let codes = codesS8(o * c * k * k, &rng), ws = logUniformScales(o, &rng)
                let bias = (0..<o).map { _ in rng.mixed() }
                let x = activations(n * h * w * c, delta: delta, zeroPoint: z, &rng)
                var q = [UInt8](repeating: 0, count: x.count)
                mdq_quantize_u8_ref(x, &q, x.count, delta, Float(z), 255)
                let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
                var acc = [Int32](repeating: 0, count: n * oh * ow * o)
                mdq_conv_u8s8s32_ref(q, n, h, w, c, codes, o, k, s, p, UInt8(z), &acc)
                let want = referenceOutput(x: x, acc: acc, rows: n * oh * ow, outputs: o, codes: codes, delta: delta, zeroPoint: z,
                                           weightScales: ws, bias: bias)
                for split in Self.exactPaths {
                    let layer = try Int8Conv2dKernel(name: "test.conv", weightCodes: codes, outChannels: o, inChannels: c, kernelSize: k,
                                                     stride: s, padding: p, weightScales: ws, inputScale: delta, inputZeroPoint: z,
                                                     bias: Tensor(shape: [o], values: bias), splitActivations: split)
                    let y = try layer.forward(FeatureMap(Tensor(shape: [n, h, w, c], values: x)))
                    XCTAssertEqual(y.tensor.shape, [n, oh, ow, o])
                    XCTAssertEqual(y.tensor.scalars.map(\.bitPattern), want.map(\.bitPattern), "conv \(n)x\(h)x\(w)x\(c)->\(o) k\(k) s\(s) p\(p) z\(z) split \(String(describing: split))")
                }
            }
        }
    }

    // MARK: - packed weights at rest (restBits 4 and 2)

    /// Codes of a bit width, with both extremes in every row.
    func codesOf(bits: Int, _ n: Int, _ rng: inout RNG) -> [Int8] {
        let half = 1 << (bits - 1)
        return (0..<n).map { i in i % 11 == 0 ? Int8(-half) : i % 11 == 5 ? Int8(half - 1) : Int8(Int(rng.next() % UInt64(2 * half)) - half) }
    }

    func testPackedMatmulS32MatchesReferenceOnBothLayouts() throws {
        var rng = RNG(seed: 98)
        // (3, 1000, 70) and (8, 1024, 96) are large enough for the parallel unpack; odd K and N pad oneDNN's layout.
        for (m, k, n) in [(1, 1, 1), (3, 17, 5), (13, 129, 65), (3, 1000, 70), (8, 1024, 96)] {
            let a = codesU8(m * k, &rng)
            for bits in [4, 2] {
                let w = codesOf(bits: bits, n * k, &rng)
                var want = [Int32](repeating: 0, count: m * n)
                mdq_gemm_u8s8s32_ref(m, n, k, a, w, &want)
                let s8 = try DNNLInt8Matmul(weightCodes: w, outFeatures: n, inFeatures: k)
                for layout in [true, false] {
                    for split in [nil, true] as [Bool?] {
                        let mm = try DNNLInt8Matmul(weightCodes: w, outFeatures: n, inFeatures: k, restBits: bits, splitActivations: split,
                                                    packPrimitiveLayout: layout)
                        XCTAssertEqual(mm.restBits, bits)
                        XCTAssertFalse(mm.splitsActivations && split == nil, "\(bits)-bit codes never need the split")
                        // Packing oneDNN's layout (u8 activations: no compensation) is the expected path.
                        XCTAssertEqual(mm.unpacksIntoPrimitiveLayout, layout)
                        let restCodes = layout ? s8.weightBytesAtRest : n * k
                        XCTAssertEqual(mm.weightBytesAtRest, (restCodes * bits + 7) / 8, "\(m)x\(k)x\(n) \(bits)-bit layout \(layout)")
                        var got = [Int32](repeating: -1, count: m * n)
                        try mm.accumulate(a, rows: m, into: &got)
                        let impl = try mm.implementation(rows: m)
                        XCTAssertEqual(got, want, "packed \(bits)-bit matmul \(m)x\(k)x\(n) layout \(layout) split \(String(describing: split)) (\(impl))")
                    }
                }
            }
        }
    }

    func testPackedConvolutionS32MatchesReferenceOnBothLayouts() throws {
        var rng = RNG(seed: 99)
        for (n, h, w, c, o, k, s, p) in [(1, 5, 7, 3, 4, 3, 1, 1), (2, 9, 6, 8, 5, 3, 2, 1), (1, 7, 7, 5, 3, 3, 2, 0), (1, 6, 5, 33, 17, 3, 1, 1),
                                         (1, 4, 4, 96, 80, 3, 1, 1)] {
            let x = codesU8(n * h * w * c, &rng)
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            for bits in [4, 2] {
                let wt = codesOf(bits: bits, o * c * k * k, &rng)
                var want = [Int32](repeating: 0, count: n * oh * ow * o)
                mdq_conv_u8s8s32_ref(x, n, h, w, c, wt, o, k, s, p, 131, &want)
                let s8 = try DNNLInt8Convolution(weightCodes: wt, outChannels: o, inChannels: c, kernelSize: k, stride: s, padding: p)
                for layout in [true, false] {
                    let conv = try DNNLInt8Convolution(weightCodes: wt, outChannels: o, inChannels: c, kernelSize: k, stride: s, padding: p,
                                                       restBits: bits, packPrimitiveLayout: layout)
                    XCTAssertFalse(conv.splitsActivations)
                    XCTAssertEqual(conv.unpacksIntoPrimitiveLayout, layout)
                    let restCodes = layout ? s8.weightBytesAtRest : wt.count
                    XCTAssertEqual(conv.weightBytesAtRest, (restCodes * bits + 7) / 8)
                    let input = try conv.makeInput(batch: n, height: h, width: w, padCode: 131)
                    x.withUnsafeBufferPointer { input.fill(from: $0.baseAddress!) }
                    var got = [Int32](repeating: -1, count: want.count)
                    try conv.accumulate(input, into: &got)
                    let impl = try conv.implementation(batch: n, height: h, width: w)
                    XCTAssertEqual(got, want, "packed \(bits)-bit conv \(n)x\(h)x\(w)x\(c)->\(o) k\(k) s\(s) p\(p) layout \(layout) (\(impl))")
                }
            }
        }
    }

    func testLinearKernelAtRestBits4And2BitIdenticalToS8() throws {
        var rng = RNG(seed: 100)
        // Every packed layer unpacks into one shared scratch: re-run the first layers after larger ones used it.
        var earlier: [(Int8LinearKernel, Tensor, [UInt32])] = []
        defer {
            for (layer, x, want) in earlier {
                XCTAssertEqual(try layer.forward(x).scalars.map(\.bitPattern), want, "\(layer.outFeatures)x\(layer.inFeatures) re-run after larger layers")
            }
        }
        for (m, k, n) in [(1, 3, 2), (5, 77, 19), (33, 640, 40), (7, 129, 65)] {
            for bits in [4, 2] {
                let z = bits == 4 ? 0 : 255
                let delta = Float(pow(10.0, -3.0 + 3.0 * rng.unit()))
                let codes = codesOf(bits: bits, n * k, &rng), ws = logUniformScales(n, &rng)
                let bias = Tensor(shape: [n], values: (0..<n).map { _ in rng.mixed() })
                let x = Tensor(shape: [m, k], values: activations(m * k, delta: delta, zeroPoint: z, &rng))
                func layer(_ restBits: Int) throws -> Int8LinearKernel {
                    try Int8LinearKernel(name: "test.linear", weightCodes: codes, outFeatures: n, inFeatures: k, weightScales: ws,
                                         inputScale: delta, inputZeroPoint: z, bias: bias, restBits: restBits)
                }
                let s8 = try layer(8), packed = try layer(bits)
                let want = try s8.forward(x).scalars.map(\.bitPattern)
                XCTAssertEqual(try packed.forward(x).scalars.map(\.bitPattern), want, "linear \(m)x\(k)x\(n) at rest \(bits)-bit")
                XCTAssertGreaterThanOrEqual(Int8UnpackScratch.byteCount, s8.weightBytesAtRest, "the shared scratch holds the largest packed layer")
                if n * k < 2000 { earlier.append((packed, x, want)) }
                // About 1/2 or 1/4 of the s8 bytes: exactly that of oneDNN's layout, rounded up to a byte.
                XCTAssertEqual(packed.weightBytesAtRest, (s8.weightBytesAtRest * bits + 7) / 8)
                XCTAssertGreaterThanOrEqual(s8.weightBytesAtRest, n * k)
            }
        }
    }

    func testConvKernelAtRestBits4And2BitIdenticalToS8() throws {
        var rng = RNG(seed: 101)
        for (n, h, w, c, o, k, s, p) in [(1, 5, 7, 3, 4, 3, 1, 1), (2, 9, 6, 8, 5, 3, 2, 1), (1, 4, 5, 16, 8, 1, 1, 0), (1, 7, 7, 5, 3, 3, 2, 0),
                                         (1, 8, 8, 64, 48, 3, 1, 1)] {
            for bits in [4, 2] {
                let z = bits == 4 ? 255 : 128
                let delta = Float(pow(10.0, -3.0 + 3.0 * rng.unit()))
                let codes = codesOf(bits: bits, o * c * k * k, &rng), ws = logUniformScales(o, &rng)
                let bias = Tensor(shape: [o], values: (0..<o).map { _ in rng.mixed() })
                let x = FeatureMap(Tensor(shape: [n, h, w, c], values: activations(n * h * w * c, delta: delta, zeroPoint: z, &rng)))
                func layer(_ restBits: Int) throws -> Int8Conv2dKernel {
                    try Int8Conv2dKernel(name: "test.conv", weightCodes: codes, outChannels: o, inChannels: c, kernelSize: k, stride: s,
                                         padding: p, weightScales: ws, inputScale: delta, inputZeroPoint: z, bias: bias, restBits: restBits)
                }
                let s8 = try layer(8), packed = try layer(bits)
                let want = try s8.forward(x).tensor.scalars.map(\.bitPattern)
                XCTAssertEqual(try packed.forward(x).tensor.scalars.map(\.bitPattern), want,
                               "conv \(n)x\(h)x\(w)x\(c)->\(o) k\(k) s\(s) p\(p) at rest \(bits)-bit")
                XCTAssertEqual(packed.weightBytesAtRest, (s8.weightBytesAtRest * bits + 7) / 8)
            }
        }
    }

    func testRestBitsRejectCodesThatDoNotFitAndUnknownWidths() throws {
        // One 4-bit-range violation (8) at index 4; the first 2-bit violation (-3) at index 1.
        let codes: [Int8] = [1, -3, 0, 7, 8, -8]
        for bits in [4, 2, 3, 0, 16] {
            let what = bits == 4 ? "index 4" : bits == 2 ? "index 1" : "bit width \(bits)"
            assertInt8Error(try Int8LinearKernel(name: "blocks.0.proj", weightCodes: codes, outFeatures: 2, inFeatures: 3, weightScales: [1, 1],
                                                 inputScale: 1, inputZeroPoint: 0, bias: nil, restBits: bits), contains: what)
            assertInt8Error(try Int8Conv2dKernel(name: "blocks.0.proj", weightCodes: codes, outChannels: 2, inChannels: 3, kernelSize: 1,
                                                 stride: 1, padding: 0, weightScales: [1, 1], inputScale: 1, inputZeroPoint: 0, bias: nil,
                                                 restBits: bits), contains: what)
        }
    }

    // MARK: - layer kernels against fp32 fake quantization

    /// gamma_n = n u / (1 - n u), u = 2^-24: the relative bound of n float32 roundings.
    static func gamma(_ n: Int) -> Double {
        let u = 0x1p-24
        return Double(n) * u / (1 - Double(n) * u)
    }

    /// Both paths approximate T = Σ (q - z) w Δx Δw[c] + b. Fake quant rounds x̂ and ŵ, each product,
    /// and sums K products plus the bias in float32: |fq - T| <= γ_{K+3} (S + |b|), S = Σ |q - z| |w| Δx Δw[c].
    /// INT8 sums exactly, then rounds the int -> float conversion, Δx·Δw, the product and the bias
    /// add: |int8 - T| <= γ_4 (S + |b|). So |int8 - fq| <= (γ_{K+3} + γ_4) (S + |b|).
    static func bound(reduction k: Int, absSum: Double, bias: Double) -> Double {
        (gamma(k + 3) + gamma(4)) * (absSum + Swift.abs(bias))
    }

    func testLinearKernelAgainstFakeQuantWithinDerivedBound() throws {
        var rng = RNG(seed: 95)
        var worst = 0.0
        for (m, k, n, z) in [(4, 77, 9, 0), (9, 640, 33, 128), (3, 2048, 5, 255)] {
            let delta = Float(0.02)
            let codes = codesS8(n * k, &rng), ws = logUniformScales(n, &rng, lo: -4, hi: -1)
            let bias = (0..<n).map { _ in rng.uniform(-1, 1) }
            let x = activations(m * k, delta: delta, zeroPoint: z, &rng)
            // Fake quant: dequantized activations and weights through an fp32 GEMM.
            var xq = [Float](repeating: 0, count: x.count)
            mdq_fake_quant_tensor(x, &xq, x.count, delta, Float(z), 0, 255)
            let wq = (0..<(n * k)).map { Float(codes[$0]) * ws[$0 / k] }
            let fq = try BLASLinear(weight: Tensor(shape: [n, k], values: wq), bias: Tensor(shape: [n], values: bias))
                .forward(Tensor(shape: [m, k], values: xq)).scalars
            let layer = try Int8LinearKernel(name: "test.linear", weightCodes: codes, outFeatures: n, inFeatures: k, weightScales: ws,
                                             inputScale: delta, inputZeroPoint: z, bias: Tensor(shape: [n], values: bias))
            let y = try layer.forward(Tensor(shape: [m, k], values: x)).scalars
            var q = [UInt8](repeating: 0, count: x.count)
            mdq_quantize_u8_ref(x, &q, x.count, delta, Float(z), 255)
            for r in 0..<m {
                for c in 0..<n {
                    var absSum = 0.0
                    for i in 0..<k { absSum += Swift.abs(Double(Int(q[r * k + i]) - z) * Double(codes[c * k + i])) }
                    absSum *= Double(delta) * Double(ws[c])
                    let b = Self.bound(reduction: k, absSum: absSum, bias: Double(bias[c]))
                    let err = Swift.abs(Double(y[r * n + c]) - Double(fq[r * n + c]))
                    worst = max(worst, err / b)
                    XCTAssertLessThanOrEqual(err, b, "linear \(m)x\(k)x\(n) z\(z) at \(r),\(c): int8 \(y[r * n + c]) fake quant \(fq[r * n + c])")
                }
            }
        }
        print("Int8LinearKernel vs fp32 fake quant: worst error / derived bound = \(worst)")
    }

    func testConvKernelAgainstFakeQuantWithinDerivedBound() throws {
        var rng = RNG(seed: 96)
        var worst = 0.0
        for (n, h, w, c, o, k, s, p, z) in [(1, 9, 7, 16, 12, 3, 1, 1, 0), (2, 8, 8, 8, 5, 3, 2, 1, 255), (1, 6, 6, 32, 16, 1, 1, 0, 128)] {
            let delta = Float(0.05)
            let taps = c * k * k
            let codes = codesS8(o * taps, &rng), ws = logUniformScales(o, &rng, lo: -4, hi: -1)
            let bias = (0..<o).map { _ in rng.uniform(-1, 1) }
            let x = activations(n * h * w * c, delta: delta, zeroPoint: z, &rng)
            var xq = [Float](repeating: 0, count: x.count)
            mdq_fake_quant_tensor(x, &xq, x.count, delta, Float(z), 0, 255)
            let wq = (0..<(o * taps)).map { Float(codes[$0]) * ws[$0 / taps] }
            let fpConv = try DNNLConvolution(weight: Tensor(shape: [o, c, k, k], values: wq), bias: Tensor(shape: [o], values: bias),
                                             stride: s, padding: p, precision: .fp32)
            let fq = try fpConv.forward(FeatureMap(Tensor(shape: [n, h, w, c], values: xq))).tensor.scalars
            let layer = try Int8Conv2dKernel(name: "test.conv", weightCodes: codes, outChannels: o, inChannels: c, kernelSize: k, stride: s,
                                             padding: p, weightScales: ws, inputScale: delta, inputZeroPoint: z, bias: Tensor(shape: [o], values: bias))
            let y = try layer.forward(FeatureMap(Tensor(shape: [n, h, w, c], values: x))).tensor.scalars
            var q = [UInt8](repeating: 0, count: x.count)
            mdq_quantize_u8_ref(x, &q, x.count, delta, Float(z), 255)
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for oc in 0..<o {
                var absSum = 0.0  // in-bounds taps only: padded taps are real zeros in both paths
                for ky in 0..<k { for kx in 0..<k {
                    let iy = oy * s + ky - p, ix = ox * s + kx - p
                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                    for ic in 0..<c {
                        absSum += Swift.abs(Double(Int(q[((b * h + iy) * w + ix) * c + ic]) - z) * Double(codes[((oc * c + ic) * k + ky) * k + kx]))
                    }
                } }
                absSum *= Double(delta) * Double(ws[oc])
                let i = ((b * oh + oy) * ow + ox) * o + oc
                let bnd = Self.bound(reduction: taps, absSum: absSum, bias: Double(bias[oc]))
                let err = Swift.abs(Double(y[i]) - Double(fq[i]))
                worst = max(worst, err / bnd)
                XCTAssertLessThanOrEqual(err, bnd, "conv k\(k) s\(s) p\(p) z\(z) at \(b),\(oy),\(ox),\(oc): int8 \(y[i]) fake quant \(fq[i])")
            } } } }
        }
        print("Int8Conv2dKernel vs fp32 fake quant: worst error / derived bound = \(worst)")
    }

    /// The residual add fused into the epilogue equals forward-then-add bit for bit; a residual of
    /// the wrong shape is refused naming the layer.
    func testFusedResidualAddIsForwardThenAdd() throws {
        var rng = RNG(seed: 98)
        let (m, k, n) = (37, 96, 21)
        let linear = try Int8LinearKernel(name: "test.to_out.0", weightCodes: codesS8(n * k, &rng), outFeatures: n, inFeatures: k,
                                          weightScales: logUniformScales(n, &rng), inputScale: 0.03, inputZeroPoint: 117,
                                          bias: Tensor(shape: [n], values: (0..<n).map { _ in rng.uniform(-1, 1) }))
        let x = Tensor(shape: [1, m, k], values: activations(m * k, delta: 0.03, zeroPoint: 117, &rng))
        let r = Tensor(shape: [1, m, n], values: (0..<(m * n)).map { _ in rng.uniform(-3, 3) })
        let plain = try linear.forward(x).scalars
        XCTAssertEqual(try linear.forward(x, adding: r).scalars.map(\.bitPattern), zip(plain, r.scalars).map { ($0 + $1).bitPattern })
        XCTAssertThrowsError(try linear.forward(x, adding: Tensor(shape: [1, m, n + 1], repeating: 0))) { error in
            XCTAssertTrue("\(error)".contains("test.to_out.0"), "\(error)")
        }
        let (c, o) = (24, 10)
        let conv = try Int8Conv2dKernel(name: "test.conv2", weightCodes: codesS8(o * c * 9, &rng), outChannels: o, inChannels: c, kernelSize: 3,
                                        stride: 1, padding: 1, weightScales: logUniformScales(o, &rng), inputScale: 0.05, inputZeroPoint: 3,
                                        bias: Tensor(shape: [o], values: (0..<o).map { _ in rng.uniform(-1, 1) }))
        let fx = FeatureMap(Tensor(shape: [1, 7, 5, c], values: activations(35 * c, delta: 0.05, zeroPoint: 3, &rng)))
        let fr = FeatureMap(Tensor(shape: [1, 7, 5, o], values: (0..<(35 * o)).map { _ in rng.uniform(-3, 3) }))
        let convPlain = try conv.forward(fx).tensor.scalars
        XCTAssertEqual(try conv.forward(fx, adding: fr).tensor.scalars.map(\.bitPattern),
                       zip(convPlain, fr.tensor.scalars).map { ($0 + $1).bitPattern })
    }

    /// GEGLU fused into the activation quantizer (row blocks through a scratch: k = 2048 gives blocks
    /// of 16 rows, so 37 rows end in a partial block) equals GEGLU then forward bit for bit, with and
    /// without a residual, through the kernel and through a `Linear`; a projection of the wrong width
    /// is refused.
    func testFusedGEGLUIsGEGLUThenForward() throws {
        var rng = RNG(seed: 99)
        let (m, k, n) = (37, 2048, 21)
        let kernel = try Int8LinearKernel(name: "test.ff.net.2", weightCodes: codesS8(n * k, &rng), outFeatures: n, inFeatures: k,
                                          weightScales: logUniformScales(n, &rng), inputScale: 0.02, inputZeroPoint: 40,
                                          bias: Tensor(shape: [n], values: (0..<n).map { _ in rng.uniform(-1, 1) }))
        let proj = Tensor(shape: [1, m, 2 * k], values: (0..<(m * 2 * k)).map { _ in rng.uniform(-4, 4) })
        let r = Tensor(shape: [1, m, n], values: (0..<(m * n)).map { _ in rng.uniform(-3, 3) })
        let h = Ops.geglu(proj)
        let plain = try kernel.forward(h).scalars.map(\.bitPattern)
        let plainAdded = try kernel.forward(h, adding: r).scalars.map(\.bitPattern)
        XCTAssertEqual(try kernel.forward(gegluOf: proj, adding: nil).scalars.map(\.bitPattern), plain)
        XCTAssertEqual(try kernel.forward(gegluOf: proj, adding: r).scalars.map(\.bitPattern), plainAdded)
        let layer = Linear(path: "test.ff.net.2", inFeatures: k, outFeatures: n, bias: nil, quantizedKernel: kernel)
        XCTAssertEqual(try layer(gegluOf: proj).shape, [1, m, n])
        XCTAssertEqual(try layer(gegluOf: proj, adding: r).scalars.map(\.bitPattern), plainAdded)
        XCTAssertThrowsError(try layer(gegluOf: Tensor(zeros: [1, m, k]))) { XCTAssertTrue($0 is LinearShapeError, "\($0)") }
        XCTAssertThrowsError(try kernel.forward(gegluOf: Tensor(zeros: [m, 2 * k + 2]), adding: nil)) { XCTAssertTrue($0 is LinearShapeError, "\($0)") }
    }

    // MARK: - bad input

    func makeLinear(codes: Int = 6, out: Int = 2, inF: Int = 3, scales: [Float] = [1, 1], delta: Float = 0.1, zp: Int = 3,
                    bias: Tensor? = nil) throws -> Int8LinearKernel {
        try Int8LinearKernel(name: "blocks.0.proj", weightCodes: [Int8](repeating: 1, count: codes), outFeatures: out, inFeatures: inF,
                             weightScales: scales, inputScale: delta, inputZeroPoint: zp, bias: bias)
    }

    func assertInt8Error(_ body: @autoclosure () throws -> Any, contains needle: String, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            let message = error.localizedDescription
            XCTAssertTrue(error is Int8KernelError, "\(type(of: error)): \(message)", line: line)
            XCTAssertTrue(message.contains("blocks.0.proj") && message.contains(needle), message, line: line)
        }
    }

    func testBadParametersNameTheLayer() throws {
        XCTAssertNoThrow(try makeLinear())
        assertInt8Error(try makeLinear(codes: 5), contains: "5 weight codes")
        assertInt8Error(try makeLinear(scales: [1]), contains: "1 weight scales")
        assertInt8Error(try makeLinear(scales: [1, 0]), contains: "channel 1")
        assertInt8Error(try makeLinear(scales: [.nan, 1]), contains: "channel 0")
        assertInt8Error(try makeLinear(delta: 0), contains: "activation scale")
        assertInt8Error(try makeLinear(delta: .infinity), contains: "activation scale")
        assertInt8Error(try makeLinear(zp: 256), contains: "zero point 256")
        assertInt8Error(try makeLinear(zp: -1), contains: "zero point -1")
        assertInt8Error(try makeLinear(bias: Tensor(shape: [3], values: [0, 0, 0])), contains: "bias has 3")
        assertInt8Error(try makeLinear(scales: [1e-30, 1], delta: 1e-20), contains: "output scale of channel 0")
        assertInt8Error(try makeLinear(codes: 0, out: 0, scales: []), contains: "positive")
        let longK = Int8KernelError.maximumReduction + 1
        assertInt8Error(try makeLinear(codes: longK, out: 1, inF: longK, scales: [1]), contains: "reduction length")
        assertInt8Error(try Int8Conv2dKernel(name: "blocks.0.proj", weightCodes: [1], outChannels: 1, inChannels: 1, kernelSize: 1, stride: 0,
                                             padding: 0, weightScales: [1], inputScale: 1, inputZeroPoint: 0, bias: nil), contains: "stride 0")
        assertInt8Error(try Int8Conv2dKernel(name: "blocks.0.proj", weightCodes: [1, 1], outChannels: 1, inChannels: 1, kernelSize: 1, stride: 1,
                                             padding: 0, weightScales: [1], inputScale: 1, inputZeroPoint: 0, bias: nil), contains: "2 weight codes")
    }

    func testBadInputShapesThrow() throws {
        let linear = try makeLinear()
        XCTAssertThrowsError(try linear.forward(Tensor(zeros: [2, 4]))) { XCTAssertTrue($0 is LinearShapeError, "\($0)") }
        let conv = try Int8Conv2dKernel(name: "blocks.0.proj", weightCodes: [Int8](repeating: 1, count: 2 * 3 * 9), outChannels: 2, inChannels: 3,
                                        kernelSize: 3, stride: 1, padding: 0, weightScales: [1, 1], inputScale: 1, inputZeroPoint: 0, bias: nil)
        assertInt8Error(try conv.forward(FeatureMap(batch: 1, height: 4, width: 4, channels: 2)), contains: "3 input channels")
        assertInt8Error(try conv.forward(FeatureMap(Tensor(zeros: [1, 2, 4, 3]))), contains: "smaller than kernel")
    }
}
