import CDNNL
import Foundation
import MixDQCompute
import XCTest

/// `DNNLAttributes` on real oneDNN primitives: each post-op kind, output scales (common, per
/// channel, runtime) and zero points against results computed here in double, and attribute
/// errors surfacing as thrown errors that name the primitive.
final class DNNLAttributesTests: XCTestCase {
    typealias RNG = KernelTests.SplitMix64

    /// y[m, n] = Σ_k a[m, k] · b[k, n] in double.
    func product(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Double] {
        var y = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for e in 0..<k { y[i * n + j] += Double(a[i * k + e]) * Double(b[e * n + j]) } } }
        return y
    }

    /// Runs an f32 matmul `[m, k] x [k, n]` (plain row-major) made with `attributes`; `extra`
    /// supplies further execution arguments (post-op operands, runtime scales).
    func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int, attributes: DNNLAttributes?, dst initial: [Float]? = nil,
                extra: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)] = []) throws -> [Float] {
        var src = try DNNLEngine.memoryDesc([m, k], dnnl_f32, dnnl_ab)
        var wei = try DNNLEngine.memoryDesc([k, n], dnnl_f32, dnnl_ab)
        var dst = try DNNLEngine.memoryDesc([m, n], dnnl_f32, dnnl_ab)
        var desc = dnnl_matmul_desc_t()
        try DNNLEngine.check(dnnl_matmul_desc_init(&desc, &src, &wei, nil, &dst), "matmul desc")
        let prim = try DNNLPrimitive(&desc, attributes: attributes, "test matmul \(m)x\(k)x\(n)")
        var a = a, b = b
        var y = initial ?? [Float](repeating: .nan, count: m * n)
        let engine = DNNLEngine.shared
        var mems: [dnnl_memory_t] = []
        defer { mems.forEach { dnnl_memory_destroy($0) } }
        try a.withUnsafeMutableBytes { ap in try b.withUnsafeMutableBytes { bp in try y.withUnsafeMutableBytes { yp in
            mems = [try engine.memory(src, ap.baseAddress), try engine.memory(wei, bp.baseAddress), try engine.memory(dst, yp.baseAddress)]
            var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, mems[0]), (DNNL_ARG_WEIGHTS, mems[1]), (DNNL_ARG_DST, mems[2])]
            for (arg, md, pointer) in extra {
                let mem = try engine.memory(md, pointer)
                mems.append(mem)
                args.append((arg, mem))
            }
            try engine.execute(prim.primitive, args, "test matmul")
        } } }
        return y
    }

    /// Every element within a few float32 ulps of the double result (the products are exact in
    /// float for these small integers; only the final rounding remains).
    func assertClose(_ got: [Float], _ want: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        for i in 0..<min(got.count, want.count) where abs(Double(got[i]) - want[i]) > 1e-5 * max(1, abs(want[i])) {
            XCTFail("\(what)[\(i)]: got \(got[i]), want \(want[i])", file: file, line: line)
            return
        }
    }

    func operands(_ m: Int, _ k: Int, _ n: Int, seed: UInt64) -> ([Float], [Float]) {
        var rng = RNG(seed: seed)
        // Small integers: every product and sum is exact in float32, so the expected values are exact.
        let a = (0..<(m * k)).map { _ in Float(Int(rng.next() % 9) - 4) }
        let b = (0..<(k * n)).map { _ in Float(Int(rng.next() % 7) - 3) }
        return (a, b)
    }

    func testSumPostOpAccumulatesIntoTheDestination() throws {
        let (m, k, n) = (5, 19, 7)
        let (a, b) = operands(m, k, n, seed: 1)
        let base = product(a, b, m: m, k: k, n: n)
        let previous = (0..<(m * n)).map { Float($0 % 11) - 5 }
        let y = try matmul(a, b, m: m, k: k, n: n, attributes: DNNLAttributes(postOps: [.sum(scale: 0.5)]), dst: previous)
        assertClose(y, (0..<(m * n)).map { base[$0] + 0.5 * Double(previous[$0]) }, "sum post-op")
    }

    func testEltwisePostOp() throws {
        let (m, k, n) = (4, 9, 6)
        let (a, b) = operands(m, k, n, seed: 2)
        let base = product(a, b, m: m, k: k, n: n)
        let relu = DNNLAttributes(postOps: [.eltwise(dnnl_eltwise_relu, alpha: 0, beta: 0, scale: 1)])
        assertClose(try matmul(a, b, m: m, k: k, n: n, attributes: relu), base.map { max($0, 0) }, "relu post-op")
        // linear: alpha·x + beta, then the post-op's own scale.
        let linear = DNNLAttributes(postOps: [.eltwise(dnnl_eltwise_linear, alpha: 2, beta: 3, scale: 0.25)])
        assertClose(try matmul(a, b, m: m, k: k, n: n, attributes: linear), base.map { 0.25 * (2 * $0 + 3) }, "linear post-op")
    }

    func testBinaryPostOpsReadTheirOperandAtExecution() throws {
        let (m, k, n) = (6, 11, 5)
        let (a, b) = operands(m, k, n, seed: 3)
        let base = product(a, b, m: m, k: k, n: n)
        var full = (0..<(m * n)).map { Float($0 % 13) - 6 }
        var perColumn = (0..<n).map { Float($0) + 1 }
        let fullMD = try DNNLEngine.memoryDesc([m, n], dnnl_f32, dnnl_ab)
        let rowMD = try DNNLEngine.memoryDesc([1, n], dnnl_f32, dnnl_ab)
        // (x + full) · perColumn, the operands numbered by their post-op index.
        let attributes = DNNLAttributes(postOps: [.binary(dnnl_binary_add, operand: fullMD), .binary(dnnl_binary_mul, operand: rowMD)])
        let y = try full.withUnsafeMutableBytes { fp in try perColumn.withUnsafeMutableBytes { pp in
            try matmul(a, b, m: m, k: k, n: n, attributes: attributes,
                       extra: [(DNNLAttributes.binaryArgument(postOp: 0), fullMD, fp.baseAddress!),
                               (DNNLAttributes.binaryArgument(postOp: 1), rowMD, pp.baseAddress!)])
        } }
        assertClose(y, (0..<(m * n)).map { (base[$0] + Double(full[$0])) * Double(perColumn[$0 % n]) }, "add then mul post-ops")
    }

    func testOutputScales() throws {
        let (m, k, n) = (3, 8, 4)
        let (a, b) = operands(m, k, n, seed: 4)
        let base = product(a, b, m: m, k: k, n: n)
        assertClose(try matmul(a, b, m: m, k: k, n: n, attributes: DNNLAttributes(outputScales: .common(0.125))),
                    base.map { $0 * 0.125 }, "common scale")
        let perChannel: [Float] = [1, 0.5, 4, 1e-3]
        assertClose(try matmul(a, b, m: m, k: k, n: n, attributes: DNNLAttributes(outputScales: .perChannel(perChannel, mask: 1 << 1))),
                    (0..<(m * n)).map { base[$0] * Double(perChannel[$0 % n]) }, "per-column scales")
        var runtime: [Float] = [8]
        let scaleMD = try DNNLEngine.memoryDesc([1], dnnl_f32, dnnl_a)
        let y = try runtime.withUnsafeMutableBytes { sp in
            try matmul(a, b, m: m, k: k, n: n, attributes: DNNLAttributes(outputScales: .runtime(mask: 0)),
                       extra: [(DNNL_ARG_ATTR_OUTPUT_SCALES, scaleMD, sp.baseAddress!)])
        }
        assertClose(y, base.map { $0 * 8 }, "runtime scale")
    }

    func testSourceZeroPointOnAnIntegerMatmul() throws {
        let (m, k, n) = (5, 23, 6)
        var rng = RNG(seed: 5)
        var a = (0..<(m * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var w = (0..<(k * n)).map { _ in Int8(truncatingIfNeeded: rng.next() % 61) - 30 }
        for (z, runtime) in [(Int32(0), false), (128, false), (255, false), (37, true)] {
            var want = [Int32](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { for e in 0..<k { want[i * n + j] += (Int32(a[i * k + e]) - z) * Int32(w[e * n + j]) } } }
            var src = try DNNLEngine.memoryDesc([m, k], dnnl_u8, dnnl_ab)
            var wei = try DNNLEngine.memoryDesc([k, n], dnnl_s8, dnnl_ab)
            var dst = try DNNLEngine.memoryDesc([m, n], dnnl_s32, dnnl_ab)
            var desc = dnnl_matmul_desc_t()
            try DNNLEngine.check(dnnl_matmul_desc_init(&desc, &src, &wei, nil, &dst), "matmul desc")
            let attributes = DNNLAttributes(zeroPoints: [(argument: DNNL_ARG_SRC, value: runtime ? .runtime : .common(z))])
            let prim = try DNNLPrimitive(&desc, attributes: attributes, "u8 matmul zero point \(z)")
            var got = [Int32](repeating: -1, count: m * n)
            var zp = [z]
            let engine = DNNLEngine.shared
            try a.withUnsafeMutableBytes { ap in try w.withUnsafeMutableBytes { wp in try got.withUnsafeMutableBytes { gp in
                try zp.withUnsafeMutableBytes { zpp in
                    let mems = [try engine.memory(src, ap.baseAddress), try engine.memory(wei, wp.baseAddress),
                                try engine.memory(dst, gp.baseAddress),
                                try engine.memory(DNNLEngine.memoryDesc([1], dnnl_s32, dnnl_a), zpp.baseAddress)]
                    defer { mems.forEach { dnnl_memory_destroy($0) } }
                    var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, mems[0]), (DNNL_ARG_WEIGHTS, mems[1]), (DNNL_ARG_DST, mems[2])]
                    if runtime { args.append((DNNLAttributes.zeroPointArgument(DNNL_ARG_SRC), mems[3])) }
                    try engine.execute(prim.primitive, args, "u8 matmul")
                }
            } } }
            XCTAssertEqual(got, want, "source zero point \(z)\(runtime ? " (runtime)" : "")")
        }
    }

    func testUnsupportedAttributesThrowNamingThePrimitive() throws {
        let (a, b) = operands(4, 5, 6, seed: 6)
        // Zero points exist for integer operands only, and a binary post-op needs a real algorithm.
        let rejected = [DNNLAttributes(zeroPoints: [(argument: DNNL_ARG_SRC, value: .common(3))]),
                        DNNLAttributes(postOps: [.binary(dnnl_eltwise_relu, operand: try DNNLEngine.memoryDesc([4, 6], dnnl_f32, dnnl_ab))])]
        for attributes in rejected {
            XCTAssertThrowsError(try matmul(a, b, m: 4, k: 5, n: 6, attributes: attributes)) { error in
                XCTAssertTrue("\(error)".contains("test matmul 4x5x6"), "\(error)")
            }
        }
    }
}
