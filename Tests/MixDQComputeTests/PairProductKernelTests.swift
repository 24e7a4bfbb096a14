import CKernels
import MixDQCompute
import Foundation
import XCTest

/// The exact VPMADDWD GEMM for CPUs without VNNI (`mdq_gemm_u8s8s32_s16`, `PairProductInt8Matmul`):
/// s32 products bit-exact against the scalar `mdq_gemm_u8s8s32_ref` on shapes that cross every
/// blocking edge (odd K, K over two 512-code blocks, rows over the 72-row block and not a multiple
/// of the 6-row tile, columns not a multiple of 16, strided rows), codes at the extremes; and the
/// W8A8 layer that picks it equal to oneDNN's exact split path bit for bit.
final class PairProductKernelTests: XCTestCase {
    typealias RNG = KernelTests.SplitMix64

    func codesU8(_ n: Int, _ rng: inout RNG) -> [UInt8] {
        (0..<n).map { i in i % 7 == 0 ? 255 : i % 11 == 0 ? 0 : UInt8(truncatingIfNeeded: rng.next()) }
    }

    func codesS8(_ n: Int, _ rng: inout RNG) -> [Int8] {
        (0..<n).map { i in i % 5 == 0 ? (i % 2 == 0 ? 127 : -128) : Int8(truncatingIfNeeded: rng.next()) }
    }

    func testKernelMatchesReferenceOnEveryBlockingEdge() throws {
        guard PairProductInt8Matmul.isAvailable else { throw XCTSkip("no AVX2 here (or the ISA limit is below it)") }
        var rng = RNG(seed: 2024)
        let shapes = [(1, 1, 1), (1, 2, 16), (5, 3, 17), (6, 16, 16), (7, 31, 33), (73, 513, 15), (145, 1031, 40), (12, 1024, 48),
                      (2, 5000, 3), (150, 64, 100)]
        for (m, k, n) in shapes {
            let w = codesS8(n * k, &rng)
            var packed = [Int8](repeating: 99, count: mdq_gemm_s16_packed_count(n, k))
            mdq_gemm_s16_pack_weights(w, n, k, &packed)
            for lda in [k, k + 3] {
                let a = codesU8(m * lda, &rng)
                var dense = [UInt8](repeating: 0, count: m * k)
                for i in 0..<m { for p in 0..<k { dense[i * k + p] = a[i * lda + p] } }
                var want = [Int32](repeating: 0, count: m * n)
                mdq_gemm_u8s8s32_ref(m, n, k, dense, w, &want)
                // ldc wider than n: the columns past n must stay untouched.
                let ldc = n + 2
                var got = [Int32](repeating: -7, count: m * ldc)
                XCTAssertEqual(mdq_gemm_u8s8s32_s16(m, n, k, a, lda, packed, &got, ldc), 0)
                var mismatches = 0
                for i in 0..<m {
                    for j in 0..<n where got[i * ldc + j] != want[i * n + j] { mismatches += 1 }
                    XCTAssertEqual(got[i * ldc + n], -7, "column past n written, \(m)x\(k)x\(n)")
                }
                XCTAssertEqual(mismatches, 0, "\(m)x\(k)x\(n) lda \(lda)")
            }
        }
    }

    /// Worst case for int16: every code at its extreme, long K. VPMADDUBSW would saturate here.
    func testExtremeCodesDoNotSaturate() throws {
        guard PairProductInt8Matmul.isAvailable else { throw XCTSkip("no AVX2 here (or the ISA limit is below it)") }
        let (m, k, n) = (7, 4097, 18)
        for weight in [Int8(127), Int8(-128)] {
            let mm = try PairProductInt8Matmul(weightCodes: [Int8](repeating: weight, count: n * k), outFeatures: n, inFeatures: k)
            var got = [Int32](repeating: 0, count: m * n)
            try mm.accumulate([UInt8](repeating: 255, count: m * k), rows: m, into: &got)
            // Written out: 255 · w · K.
            XCTAssertEqual(Set(got), [Int32(255 * Int(weight) * k)])
            XCTAssertEqual(mm.weightSums, [Int32](repeating: Int32(Int(weight) * k), count: n))
        }
    }

    /// Rows split across the cores: a tall matrix equals the reference (each row block is independent).
    func testMatmulAcrossCoresMatchesReference() throws {
        guard PairProductInt8Matmul.isAvailable else { throw XCTSkip("no AVX2 here (or the ISA limit is below it)") }
        var rng = RNG(seed: 7)
        let (m, k, n) = (301, 320, 77)
        let a = codesU8(m * k, &rng), w = codesS8(n * k, &rng)
        var want = [Int32](repeating: 0, count: m * n)
        mdq_gemm_u8s8s32_ref(m, n, k, a, w, &want)
        let mm = try PairProductInt8Matmul(weightCodes: w, outFeatures: n, inFeatures: k)
        var got = [Int32](repeating: 0, count: m * n)
        try mm.accumulate(a, rows: m, into: &got)
        XCTAssertEqual(got, want)
        XCTAssertEqual(mm.weightBytesAtRest, mdq_gemm_s16_packed_count(n, k))
        XCTAssertEqual(mdq_gemm_s16_packed_count(n, k), 5 * 160 * 32, "5 panels x 160 pairs x (16 columns x 2 codes)")
    }

    /// The W8A8 Linear picks the pair kernel exactly where oneDNN would need the split, and its
    /// output equals the forced split path's bit for bit (same integers, same epilogue).
    func testLinearPicksPairProductsWhereTheSplitWouldRun() throws {
        var rng = RNG(seed: 11)
        let (m, k, n) = (37, 200, 45)
        let w = codesS8(n * k, &rng)
        let x = Tensor(shape: [m, k], values: (0..<(m * k)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 300 })
        let scales = (0..<n).map { Float(1 + $0 % 5) * 1e-3 }
        let bias = Tensor(shape: [n], values: (0..<n).map { Float($0) / 7 })
        func layer(_ split: Bool?) throws -> Int8LinearKernel {
            try Int8LinearKernel(name: "pair-test", weightCodes: w, outFeatures: n, inFeatures: k, weightScales: scales,
                                 inputScale: 0.013, inputZeroPoint: 131, bias: bias, splitActivations: split)
        }
        let auto = try layer(nil)
        let expectPairs = Int8ActivationSplit.needed(weightCodes: w) && PairProductInt8Matmul.isAvailable
        XCTAssertEqual(auto.matmul is PairProductInt8Matmul, expectPairs,
                       "lacks VNNI: \(Int8ActivationSplit.cpuLacksVNNI), AVX2 kernel: \(PairProductInt8Matmul.isAvailable)")
        let split = try layer(true)
        let a = try auto.forward(x), b = try split.forward(x)
        let implementation = try auto.matmul.implementation(rows: m)
        XCTAssertEqual(a.scalars, b.scalars, "auto path (\(implementation)) vs oneDNN's split")
    }

    /// Convolutions through im2col onto the kernel: bit-exact against `mdq_conv_u8s8s32_ref` for
    /// 1×1 and 3×3 kernels, strides 1 and 2, padding 0 and 1, border codes 0, 128 and 255.
    func testConvolutionMatchesReference() throws {
        guard PairProductInt8Matmul.isAvailable else { throw XCTSkip("no AVX2 here (or the ISA limit is below it)") }
        var rng = RNG(seed: 99)
        let shapes = [(1, 5, 7, 3, 4, 3, 1, 1), (2, 9, 6, 8, 5, 3, 2, 1), (1, 4, 4, 16, 8, 1, 1, 0), (1, 7, 7, 5, 3, 3, 2, 0),
                      (1, 1, 1, 2, 3, 3, 1, 1), (1, 8, 8, 33, 17, 1, 2, 0), (1, 6, 5, 64, 7, 3, 1, 1), (1, 12, 11, 40, 20, 3, 1, 1)]
        for (n, h, w, c, o, k, st, p) in shapes {
            let x = codesU8(n * h * w * c, &rng), wt = codesS8(o * c * k * k, &rng)
            let oh = (h + 2 * p - k) / st + 1, ow = (w + 2 * p - k) / st + 1
            let conv = try PairProductInt8Convolution(weightCodes: wt, outChannels: o, inChannels: c, kernelSize: k, stride: st, padding: p)
            for z in [0, 128, 255] {
                var want = [Int32](repeating: 0, count: n * oh * ow * o)
                mdq_conv_u8s8s32_ref(x, n, h, w, c, wt, o, k, st, p, UInt8(z), &want)
                let input = try conv.makeInput(batch: n, height: h, width: w, padCode: UInt8(z))
                x.withUnsafeBufferPointer { input.fill(from: $0.baseAddress!) }
                var got = [Int32](repeating: -1, count: want.count)
                try conv.accumulate(input, into: &got)
                XCTAssertEqual(got, want, "conv \(n)x\(h)x\(w)x\(c)->\(o) k\(k) s\(st) p\(p) z\(z)")
            }
        }
    }

    /// The W8A8 Conv2d picks the im2col path where oneDNN would need the split; same output bit for bit.
    func testConv2dPicksPairProductsWhereTheSplitWouldRun() throws {
        var rng = RNG(seed: 5)
        let (c, o, h, w) = (24, 19, 9, 10)
        let wt = codesS8(o * c * 9, &rng)
        let x = FeatureMap(batch: 1, height: h, width: w, channels: c)
        for i in 0..<x.tensor.count { x.tensor.data[i] = Float(Int(rng.next() % 2001) - 1000) / 250 }
        func layer(_ split: Bool?) throws -> Int8Conv2dKernel {
            try Int8Conv2dKernel(name: "pair-conv-test", weightCodes: wt, outChannels: o, inChannels: c, kernelSize: 3, stride: 1, padding: 1,
                                 weightScales: (0..<o).map { Float(1 + $0 % 3) * 2e-3 }, inputScale: 0.02, inputZeroPoint: 140,
                                 bias: Tensor(shape: [o], values: (0..<o).map { Float($0) / 9 }), splitActivations: split)
        }
        let auto = try layer(nil)
        XCTAssertEqual(auto.convolution is PairProductInt8Convolution,
                       Int8ActivationSplit.needed(weightCodes: wt) && PairProductInt8Matmul.isAvailable)
        XCTAssertEqual(try auto.forward(x).tensor.scalars, try layer(true).forward(x).tensor.scalars)
    }

    /// The fused epilogue equals the reference GEMM followed by `mdq_dequant_s32_rows_ref` bit for bit,
    /// with and without bias and residual, across the blocking edges (the epilogue runs on the last
    /// K block only, full and partial tiles).
    func testFusedEpilogueMatchesGemmThenReferenceEpilogue() throws {
        guard PairProductInt8Matmul.isAvailable else { throw XCTSkip("no AVX2 here (or the ISA limit is below it)") }
        var rng = RNG(seed: 31)
        for (m, k, n) in [(1, 1, 1), (7, 31, 33), (73, 1031, 21), (13, 600, 48)] {
            let a = codesU8(m * k, &rng), w = codesS8(n * k, &rng)
            var packed = [Int8](repeating: 0, count: mdq_gemm_s16_packed_count(n, k))
            mdq_gemm_s16_pack_weights(w, n, k, &packed)
            let wsum = (0..<n).map { j in (0..<k).reduce(Int32(0)) { $0 &+ Int32(w[j * k + $1]) } }
            let scale = (0..<n).map { _ in Float(pow(10.0, -6 + 8 * rng.unit())) }
            let bias = (0..<n).map { _ in Float(rng.uniform(-3, 3)) }
            let residual = (0..<(m * n)).map { _ in Float(rng.uniform(-50, 50)) }
            var acc = [Int32](repeating: 0, count: m * n)
            mdq_gemm_u8s8s32_ref(m, n, k, a, w, &acc)
            for zp in [Int32(0), 131, 255] {
                for (useBias, useResidual) in [(false, false), (true, false), (true, true), (false, true)] {
                    var want = [Float](repeating: 0, count: m * n)
                    let b = useBias ? bias : nil, r = useResidual ? residual : nil
                    mdq_dequant_s32_rows_ref(acc, &want, m, n, zp, wsum, scale, b, r)
                    var got = [Float](repeating: .nan, count: m * n)
                    XCTAssertEqual(mdq_gemm_u8s8_dequant_s16(m, n, k, a, k, packed, &got, n, zp, wsum, scale, b, r, n), 0)
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern),
                                   "\(m)x\(k)x\(n) z \(zp) bias \(useBias) residual \(useResidual)")
                }
            }
        }
    }
}
