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

    func run() throws {
        let w = Tensor(shape: [outFeatures, inFeatures], repeating: 0.01)
        let b = Tensor(shape: [outFeatures], repeating: 0.1)
        let x = Tensor(shape: [rows, inFeatures], repeating: 0.5)
        let layer = Linear(path: "bench", weight: w, bias: b)
        layer.usePrecision(precision)
        _ = layer(x)
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = Date()
            _ = layer(x)
            times.append(Date().timeIntervalSince(t0))
        }
        let median = times.sorted()[times.count / 2]
        let flop = 2.0 * Double(rows * inFeatures * outFeatures)
        print(String(format: "linear %dx%dx%d %@: median %.2f ms, %.1f GFLOP/s", rows, inFeatures, outFeatures,
                     precision.rawValue as NSString, median * 1e3, flop / median / 1e9))
    }
}
