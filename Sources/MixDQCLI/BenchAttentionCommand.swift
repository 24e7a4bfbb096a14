import ArgumentParser
import Foundation
import MixDQCompute

/// `mixdq bench attention`: one multi-head attention shape (SDXL-Turbo's at 512x512 by default:
/// 1024 tokens, 10 heads of 64), fp32 or bf16, to see the attention kernel apart from the model.
struct BenchAttention: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attention", abstract: "Time softmax(q kᵀ/√d) v for one shape.")
    @Option var batch = 1
    @Option(help: "Query tokens.") var tokens = 1024
    @Option(help: "Key/value tokens (77 for SDXL's cross-attention; default: --tokens).") var contextTokens: Int?
    @Option var heads = 10
    @Option var headDim = 64
    @Option var precision: Precision = .fp32
    @Option var runs = 10

    func validate() throws {
        for (name, v) in [("--batch", batch), ("--tokens", tokens), ("--context-tokens", contextTokens ?? 1), ("--heads", heads), ("--head-dim", headDim)]
        where !(1...1 << 16).contains(v) {
            throw ValidationError("\(name) must be between 1 and \(1 << 16), found \(v)")
        }
        let m = contextTokens ?? tokens
        if batch * heads * tokens * m > 1 << 30 || batch * max(tokens, m) * heads * headDim > 1 << 30 {
            throw ValidationError("the score matrix (batch x heads x tokens x context tokens) and each operand must stay under 2^30 elements")
        }
        try BenchBounds.check(runs: runs, warmup: 0)
        try precision.checkSupported().map { print($0) }
    }

    func run() throws {
        let m = contextTokens ?? tokens
        let c = heads * headDim
        var rng = SplitMix64(seed: 1)
        func random(_ shape: [Int]) -> Tensor {
            let t = Tensor(uninitializedShape: shape)
            for i in 0..<t.count { t.data[i] = rng.nextUnitFloat() * 2 - 1 }
            return t
        }
        let (q, k, v) = (random([batch, tokens, c]), random([batch, m, c]), random([batch, m, c]))
        // Where a blocked engine runs (AMX tiles, AVX512-BF16), each is timed against the oneDNN
        // two-matmul path, call by call, alternating, so a shared machine's drifts hit all alike.
        let engines = AttentionKernel.blockedEngine(precision: precision, headDim: headDim) == nil ? []
            : BlockedBF16Attention.Engine.allCases.filter(BlockedBF16Attention.isAvailable)
        let kernels: [(String, AttentionKernel.Implementation)] = engines.isEmpty ? [("", .automatic)]
            : engines.map { ($0.rawValue, .blocked($0)) } + [("oneDNN matmuls", .oneDNN)]
        var times = Array(repeating: [Double](), count: kernels.count)
        for run in -1..<runs {
            for (i, kernel) in kernels.enumerated() {
                let t0 = Date()
                _ = try AttentionKernel.scaledDotProduct(q: q, k: k, v: v, heads: heads, precision: precision, implementation: kernel.1)
                if run >= 0 { times[i].append(Date().timeIntervalSince(t0)) }
            }
        }
        let flop = 4.0 * Double(batch * heads * tokens * m * headDim)
        var medians: [Double] = []
        for (i, kernel) in kernels.enumerated() {
            let median = times[i].sorted()[times[i].count / 2]
            medians.append(median)
            print(String(format: "attention batch %d, %d heads x %d, %dx%d tokens, %@%@: median %.2f ms, %.1f GFLOP/s (%@)", batch, heads,
                         headDim, tokens, m, precision.rawValue as NSString, (kernel.0.isEmpty ? "" : ", " + kernel.0) as NSString,
                         median * 1e3, flop / median / 1e9,
                         CPUInfo.current.summary as NSString))
        }
        for (i, engine) in engines.enumerated() {
            print(String(format: "%@ / oneDNN: %.2fx (alternated, %d runs each)", engine.rawValue as NSString, medians[i] / medians[engines.count], runs))
        }
    }
}
