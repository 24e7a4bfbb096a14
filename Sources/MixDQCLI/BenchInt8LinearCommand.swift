import ArgumentParser
import Foundation
import MixDQCompute

/// `mixdq bench int8-linear`: one dense layer shape as fp32 (OpenBLAS, oneDNN) and as W8A8
/// (u8 x s8 -> s32 on oneDNN plus quantizer and epilogue), and the integer matmul alone on the
/// direct and the 7-bit split path, so the split's cost on a CPU is one command away; then 4-bit and
/// 2-bit weight codes resting packed (unpacked per call) against the same codes resting as s8.
struct BenchInt8Linear: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "int8-linear", abstract: "Time one linear shape in fp32 and W8A8 (oneDNN INT8), with the CPU and oneDNN implementations.")
    @Option var rows = 4096
    @Option var inFeatures = 640
    @Option var outFeatures = 5120
    @Option var runs = 10
    @Option(help: "Weight bit width 2...8 (codes in [-2^(b-1), 2^(b-1) - 1]; up to 7 bits no CPU needs the split).") var weightBits = 8
    @Option(help: "Seed for the random activations and weight codes.") var seed: UInt64 = 0

    func validate() throws {
        for (name, v) in [("--rows", rows), ("--in-features", inFeatures), ("--out-features", outFeatures)] where !(1...1 << 20).contains(v) {
            throw ValidationError("\(name) must be between 1 and \(1 << 20), found \(v)")
        }
        if rows * inFeatures > 1 << 31 || outFeatures * inFeatures > 1 << 31 || rows * outFeatures > 1 << 31 {
            throw ValidationError("--rows x --in-features, --out-features x --in-features and --rows x --out-features must each stay under 2^31 elements")
        }
        if inFeatures > Int8KernelError.maximumReduction {
            throw ValidationError("--in-features must be at most \(Int8KernelError.maximumReduction) for exact int32 accumulation, found \(inFeatures)")
        }
        try BenchBounds.check(runs: runs, warmup: 0)
        if !(2...8).contains(weightBits) { throw ValidationError("--weight-bits must be between 2 and 8, found \(weightBits)") }
    }

    private func median(_ body: () throws -> Void) rethrows -> Double {
        try body()  // warm-up: primitives for this row count, first-touch of buffers
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = Date()
            try body()
            times.append(Date().timeIntervalSince(t0))
        }
        return times.sorted()[times.count / 2]
    }

    func run() throws {
        var rng = SplitMix64(seed: seed)
        let (m, k, n) = (rows, inFeatures, outFeatures)
        let delta: Float = 0.02, zeroPoint = 100
        let x = Tensor(uninitializedShape: [m, k])
        for i in 0..<x.count { x.data[i] = (rng.nextUnitFloat() * 255 - Float(zeroPoint)) * delta }
        let levels = UInt64(1) << UInt64(weightBits)
        let codes = (0..<(n * k)).map { _ in Int8(Int(rng.next() % levels) - Int(levels / 2)) }
        let weightScales = (0..<n).map { _ in 1e-3 * (1 + rng.nextUnitFloat()) }
        let bias = Tensor(shape: [n], repeating: 0.1)
        let fpWeight = Tensor(uninitializedShape: [n, k])
        for i in 0..<fpWeight.count { fpWeight.data[i] = Float(codes[i]) * weightScales[i / k] }

        let blas = BLASLinear(weight: fpWeight, bias: bias)
        let dnnlFP32 = try DNNLMatmul(weight: fpWeight, bias: bias, precision: .fp32)
        let int8 = try Int8LinearKernel(name: "bench", weightCodes: codes, outFeatures: n, inFeatures: k, weightScales: weightScales,
                                        inputScale: delta, inputZeroPoint: zeroPoint, bias: bias)
        let direct = try DNNLInt8Matmul(weightCodes: codes, outFeatures: n, inFeatures: k, splitActivations: false)
        let split = try DNNLInt8Matmul(weightCodes: codes, outFeatures: n, inFeatures: k, splitActivations: true)
        let q = [UInt8]((0..<(m * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        var acc = [Int32](repeating: 0, count: m * n)

        let flop = 2.0 * Double(m) * Double(k) * Double(n)
        func line(_ what: String, _ seconds: Double, _ note: String = "") {
            let label = what.padding(toLength: 36, withPad: " ", startingAt: 0)
            print(String(format: "  %@ %9.2f ms  %7.1f GOP/s  %@", label as NSString, seconds * 1e3, flop / seconds / 1e9, note as NSString))
        }
        print("CPU: \(CPUInfo.current.summary)")
        print("linear \(m)x\(k)x\(n) (rows x in x out), W\(weightBits)A8, median of \(runs) runs:")
        let tBLAS = try median { _ = try blas.forward(x) }
        line("fp32 OpenBLAS", tBLAS)
        line("fp32 oneDNN", try median { _ = try dnnlFP32.forward(x) })
        let tInt8 = try median { _ = try int8.forward(x) }
        let path = int8.matmul.splitsActivations ? "7-bit split (no VNNI, codes beyond +-64)"
            : int8.matmul is PairProductInt8Matmul ? "pair products (no VNNI, codes beyond +-64)" : "direct"
        line("W8A8 layer (quantize+s32+epilogue)", tInt8, "\(path); \(String(format: "%.2fx", tInt8 / tBLAS)) of fp32 OpenBLAS")
        let tDirect = try median { try direct.accumulate(q, rows: m, into: &acc) }
        let exact = !Int8ActivationSplit.needed(weightCodes: codes)
        line("u8s8s32 matmul, direct", tDirect, "\(try direct.implementation(rows: m))\(exact ? "" : "; INEXACT here: int16 saturation")")
        let tSplit = try median { try split.accumulate(q, rows: m, into: &acc) }
        line("u8s8s32 matmul, 7-bit split", tSplit, "\(try split.implementation(rows: m)); \(String(format: "%.2fx", tSplit / tDirect)) of direct")
        if PairProductInt8Matmul.isAvailable {
            let pairs = try PairProductInt8Matmul(weightCodes: codes, outFeatures: n, inFeatures: k)
            let tPairs = try median { try pairs.accumulate(q, rows: m, into: &acc) }
            line("u8s8s32 matmul, VPMADDWD pairs", tPairs, "\(try pairs.implementation(rows: m)); \(String(format: "%.2fx", tPairs / tSplit)) of the split, \(String(format: "%.2fx", tPairs / tBLAS)) of fp32 OpenBLAS")
        }

        // Packed at rest: b-bit codes (their own draw, so they fit), the same codes resting as s8 beside them.
        for bits in [4, 2] {
            let half = 1 << (bits - 1)
            let lowCodes = (0..<(n * k)).map { _ in Int8(Int(rng.next() % UInt64(2 * half)) - half) }
            func layer(_ restBits: Int) throws -> Int8LinearKernel {
                try Int8LinearKernel(name: "bench", weightCodes: lowCodes, outFeatures: n, inFeatures: k, weightScales: weightScales,
                                     inputScale: delta, inputZeroPoint: zeroPoint, bias: bias, restBits: restBits)
            }
            let s8 = try layer(8), packed = try layer(bits)
            let tS8 = try median { _ = try s8.forward(x) }
            line("W\(bits)A8 layer, s8 at rest", tS8, "\(s8.weightBytesAtRest) weight bytes; \(String(format: "%.2fx", tS8 / tBLAS)) of fp32 OpenBLAS")
            let tPacked = try median { _ = try packed.forward(x) }
            let layout = (packed.matmul as? DNNLInt8Matmul)?.unpacksIntoPrimitiveLayout ?? false ? "unpacks into oneDNN's layout" : "plain order, reordered per call"
            line("W\(bits)A8 layer, \(bits)-bit at rest", tPacked,
                 "\(packed.weightBytesAtRest) weight bytes (\(layout)); \(String(format: "%.2fx", tPacked / tBLAS)) of fp32 OpenBLAS, \(String(format: "%.2fx", tPacked / tS8)) of s8 at rest")
            let codes = try PackedWeightCodes(codes: lowCodes, bits: bits, name: "bench")
            var unpacked = [Int8](repeating: 0, count: n * k)
            let tUnpack = median { unpacked.withUnsafeMutableBufferPointer { if let base = $0.baseAddress { codes.unpack(into: base) } } }
            print(String(format: "  %@ %9.3f ms  %7.1f GB/s of s8 codes", "  \(bits)-bit unpack alone (one core)".padding(toLength: 36, withPad: " ", startingAt: 0) as NSString,
                         tUnpack * 1e3, Double(n * k) / tUnpack / 1e9))
        }
    }
}
