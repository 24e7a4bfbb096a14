import ArgumentParser
import Foundation
import MixDQCompute

/// `mixdq bench linear`: one dense layer shape, fp32 (OpenBLAS) vs bf16 (oneDNN), to see kernel
/// efficiency apart from the model.
struct BenchLinear: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "linear", abstract: "Time y = x W^T + b for one shape.")
    @Option var rows = 4096
    @Option var inFeatures = 640
    @Option var outFeatures = 5120
    @Option var precision: Precision = .fp32
    @Option var runs = 10
    @Flag(help: "fp32 on a oneDNN matmul with packed weights instead of OpenBLAS.") var dnnl = false
    @Option(help: "Distinct weight matrices cycled through (cold weights, as in a model forward).") var weights = 1

    func validate() throws {
        // One [rows, in] input and `weights` [out, in] matrices are allocated: keep each under 2^31 floats.
        for (name, v) in [("--rows", rows), ("--in-features", inFeatures), ("--out-features", outFeatures)] where !(1...1 << 20).contains(v) {
            throw ValidationError("\(name) must be between 1 and \(1 << 20), found \(v)")
        }
        if rows * inFeatures > 1 << 31 || outFeatures * inFeatures > 1 << 31 {
            throw ValidationError("--rows x --in-features and --out-features x --in-features must each stay under 2^31 elements")
        }
        try BenchBounds.check(runs: runs, warmup: 0)
        if !(1...64).contains(weights) { throw ValidationError("--weights must be between 1 and 64, found \(weights)") }
    }

    func run() throws {
        let b = Tensor(shape: [outFeatures], repeating: 0.1)
        let x = Tensor(shape: [rows, inFeatures], repeating: 0.5)
        let layers: [LinearKernel] = try (0..<weights).map { _ in
            let w = Tensor(shape: [outFeatures, inFeatures], repeating: 0.01)
            if precision == .bf16 { return try DNNLMatmul(weight: w, bias: b, precision: .bf16) }
            return dnnl ? try DNNLMatmul(weight: w, bias: b, precision: .fp32) : BLASLinear(weight: w, bias: b)
        }
        for l in layers { _ = try l.forward(x) }
        var times: [Double] = []
        for r in 0..<runs {
            let t0 = Date()
            _ = try layers[r % layers.count].forward(x)
            times.append(Date().timeIntervalSince(t0))
        }
        let median = times.sorted()[times.count / 2]
        let flop = 2.0 * Double(rows * inFeatures * outFeatures)
        var library = precision == .bf16 || dnnl ? "oneDNN" : "OpenBLAS"
        if let matmul = layers.first as? DNNLMatmul, matmul.slices > 1 { library += " (reduction in \(matmul.slices) slices)" }
        print(String(format: "linear %dx%dx%d %@ %@: median %.2f ms, %.1f GFLOP/s", rows, inFeatures, outFeatures,
                     precision.rawValue as NSString, library as NSString, median * 1e3, flop / median / 1e9))
    }
}
