import ArgumentParser
import Foundation
import MixDQIO
import MixDQCompute
import MixDQModels
import MixDQPipeline

/// `mixdq bench ...`: performance lives here, never in tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (median of timed runs after warm-up, GFLOP/s, peak RSS).",
        subcommands: [BenchUNet.self, BenchTextEncoder.self, BenchVAEDecoder.self, BenchLinear.self, BenchAttention.self, BenchInt8Linear.self, BenchQuant.self])
}

struct BenchUNet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unet", abstract: "Time one UNet forward (batch 1) on a model folder or seeded random weights.")

    @Flag(help: "Build the model from --model-config with seeded random weights (no checkpoint needed).")
    var randomWeights = false
    @Option(help: "A diffusers unet/config.json (with --random-weights).") var modelConfig: String?
    @Option(help: "A diffusers pipeline or unet folder (instead of --random-weights).") var model: String?
    @Option var height = 512
    @Option var width = 512
    @Option var precision: Precision = .fp32
    @Option(help: "Timed runs.") var runs = 3
    @Option(help: "Untimed warm-up runs.") var warmup = 1
    @Option(help: "Seed for random weights and inputs.") var seed: UInt64 = 0
    @Flag(help: "Print one JSON line instead of the table.") var json = false
    @Flag(help: "Print time per op category (conv, linear, attention, norms) of the last run.") var profile = false
    @Flag(help: "First run an fp32 model on the same inputs and report the SQNR of this precision's output against it.")
    var sqnrVsFp32 = false
    @Option(help: ArgumentHelp("Quantize every Conv2d/Linear on the int8 backend as the model loads: w8a8 (or w<bits>a8), w<bits>a16 (weight-only), or a weight bit file 'model.<layer path>: bits'.",
                               discussion: "With --random-weights only; activations are u8 with a fixed (Δx, z), which does not change the speed. --precision bf16 runs w<bits>a16 layers and attention in bf16 (infer's --precision)."))
    var quant: String?
    @Flag(help: "bf16 on a CPU with AMX or AVX512-BF16: alternate forwards with the blocked attention (AMX tiles, else AVX512-BF16) and with oneDNN's matmuls, in one process, and print both.")
    var attentionBaseline = false

    func validate() throws {
        if let note = try precision.checkSupported() { StandardError.write(note + "\n") }
        if randomWeights == (model != nil) { throw ValidationError("give exactly one of --random-weights (with --model-config) or --model") }
        if randomWeights && modelConfig == nil { throw ValidationError("--random-weights needs --model-config") }
        try BenchBounds.check(height: height, width: width, runs: runs, warmup: warmup)
        if attentionBaseline && (precision != .bf16 || AttentionKernel.blockedEngine(precision: .bf16, headDim: 64) == nil) {
            throw ValidationError("--attention-baseline compares the blocked bf16 attention with oneDNN's: it needs --precision bf16 on a CPU with AMX tiles or AVX512-BF16 (\(CPUInfo.current.summary))")
        }
        if attentionBaseline && (quant != nil || sqnrVsFp32 || json) {
            throw ValidationError("--attention-baseline prints its own two-kernel table: it cannot go with --quant, --sqnr-vs-fp32 or --json")
        }
        if quant != nil {
            if !randomWeights { throw ValidationError("--quant builds the UNet from --random-weights (with --model-config)") }
            if sqnrVsFp32 { throw ValidationError("--sqnr-vs-fp32 cannot go with --quant (it would hold the fp32 UNet as well)") }
        }
    }

    func run() throws {
        if let quant { return try runQuantized(quant) }
        func build(_ p: Precision) throws -> UNet2DConditionModel {
            if randomWeights {
                let config = try UNetConfig.load(URL(fileURLWithPath: modelConfig!))
                return try UNet2DConditionModel(config: config, weights: RandomWeightSource(seed: seed), precision: p,
                                                packForInference: true)
            }
            return try ModelFolder(URL(fileURLWithPath: model!)).loadUNet(precision: p, packForInference: true)
        }
        var reference: Tensor?
        if sqnrVsFp32 {
            let fp = try build(.fp32)
            reference = try fp(BenchInputs.unet(fp.config, height: height, width: width, seed: seed))
        }
        let t0 = Date()
        let unet = try build(precision)
        let loadSeconds = Date().timeIntervalSince(t0)
        let inputs = BenchInputs.unet(unet.config, height: height, width: width, seed: seed)
        if attentionBaseline { return try compareAttention(unet, inputs) }
        var times: [Double] = []
        var flops = 0.0
        var sqnr: Double?
        for i in 0..<(warmup + runs) {
            FLOPCounter.enabled = true
            FLOPCounter.reset()
            OpProfiler.enabled = profile
            OpProfiler.reset()
            let start = Date()
            let out = try unet(inputs)
            if let reference, sqnr == nil {
                var s = 0.0, n = 0.0
                for j in 0..<reference.count {
                    let r = Double(reference.data[j]), d = Double(out.data[j]) - r
                    s += r * r; n += d * d
                }
                sqnr = 10 * log10(s / max(n, 1e-300))
            }
            let dt = Date().timeIntervalSince(start)
            flops = FLOPCounter.flops
            if i >= warmup { times.append(dt) }
            if !json { StandardError.write("run \(i + 1)/\(warmup + runs)\(i < warmup ? " (warm-up)" : ""): \(String(format: "%.3f", dt)) s\n") }
        }
        let median = times.sorted()[times.count / 2]
        let peak = Double(ProcessMemory.peakResidentBytes) / 1e9
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
        if json {
            let timesText = times.map { String(format: "%.4f", $0) }.joined(separator: ",")
            print("{\"runtime\":\"mixdq\",\"precision\":\"\(precision.rawValue)\",\"median_s\":\(String(format: "%.4f", median)),\"times\":[\(timesText)],\"tflop\":\(String(format: "%.4f", flops / 1e12)),\"peak_rss_gb\":\(String(format: "%.2f", peak)),\"params\":\(unet.parameterCount),\"load_s\":\(String(format: "%.1f", loadSeconds)),\"loadavg\":\"\(load)\",\"conv_algorithm\":\"\(ConvolutionAlgorithm.current.rawValue)\"\(sqnr.map { String(format: ",\"sqnr_vs_fp32_db\":%.2f", $0) } ?? "")}")
        } else {
            print("mixdq bench unet  \(height)x\(width)  \(precision.rawValue)  params \(unet.parameterCount)  convolutions \(ConvolutionAlgorithm.current.rawValue)")
            print(String(format: "  median %.3f s over %d runs (min %.3f, max %.3f); %.3f TFLOP/forward -> %.1f GFLOP/s",
                         median, times.count, times.min()!, times.max()!, flops / 1e12, flops / median / 1e9))
            if profile {
                for (op, sec) in OpProfiler.report { print(String(format: "  %-12@ %8.3f s", op as NSString, sec)) }
            }
            if let sqnr { print(String(format: "  output SQNR vs fp32: %.1f dB", sqnr)) }
            print(String(format: "  peak RSS %.2f GB; build %.1f s; load average at end %@", peak, loadSeconds, load))
        }
    }
}

extension BenchUNet {
    /// Forwards with the blocked attention (AMX tiles, else AVX512-BF16) and on oneDNN's matmuls,
    /// alternating (warm-up rounds first), so the shared machine's drifts reach both alike.
    func compareAttention(_ unet: UNet2DConditionModel, _ inputs: UNetInputs) throws {
        guard let engine = AttentionKernel.blockedEngine(precision: .bf16, headDim: 64) else {
            throw ValidationError("--attention-baseline needs a blocked bf16 attention engine here (\(CPUInfo.current.summary))")
        }
        let modes: [(String, AttentionKernel.Implementation)] = [(engine.rawValue, .blocked(engine)), ("oneDNN matmuls", .oneDNN)]
        var times = [[Double]](repeating: [], count: modes.count), attention = times
        defer { AttentionKernel.defaultImplementation = .automatic }
        for round in 0..<(warmup + runs) {
            for (i, mode) in modes.enumerated() {
                AttentionKernel.defaultImplementation = mode.1
                OpProfiler.enabled = true
                OpProfiler.reset()
                let start = Date()
                _ = try unet(inputs)
                let dt = Date().timeIntervalSince(start)
                let inAttention = OpProfiler.report.first { $0.0 == "attention" }?.1 ?? 0
                StandardError.write(String(format: "round %d/%d%@, attention on %@: forward %.3f s, attention %.3f s\n", round + 1, warmup + runs,
                                           (round < warmup ? " (warm-up)" : "") as NSString, mode.0 as NSString, dt, inAttention))
                if round >= warmup {
                    times[i].append(dt)
                    attention[i].append(inAttention)
                }
            }
        }
        print("mixdq bench unet --attention-baseline  \(height)x\(width)  bf16  (\(CPUInfo.current.summary))")
        func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        for (i, mode) in modes.enumerated() {
            print(String(format: "  attention on %@: forward median %.3f s, attention median %.3f s over %d runs", mode.0 as NSString,
                         median(times[i]), median(attention[i]), runs))
        }
        print(String(format: "  %@ / oneDNN: forward %.3fx, attention %.3fx (alternated)", engine.rawValue as NSString, median(times[0]) / median(times[1]),
                     median(attention[0]) / median(attention[1])))
    }
}

/// Deterministic inputs of the pipeline's shapes.
enum BenchInputs {
    static func unet(_ config: UNetConfig, height: Int, width: Int, seed: UInt64) -> UNetInputs {
        var g = SplitMix64(seed: seed &+ 1)
        func randn(_ shape: [Int]) -> Tensor {
            let t = Tensor(uninitializedShape: shape)
            for i in 0..<t.count { t.data[i] = g.nextGaussian() }
            return t
        }
        let sample = randn([1, config.inChannels, height / 8, width / 8])
        let ctx = randn([1, 77, config.crossAttentionDimValue])
        var text: Tensor? = nil, ids: Tensor? = nil
        if config.hasTextTimeEmbedding {
            text = randn([1, config.projectionClassEmbeddingsInputDim! - 6 * config.additionTimeEmbedDim!])
            ids = Tensor(shape: [1, 6], values: [Float(height), Float(width), 0, 0, Float(height), Float(width)])
        }
        // LCM-distilled UNets: a guidance embedding (diffusers' of guidance 8 - 1), so cond_proj runs too.
        let cond = config.timeCondProjDim.map { GuidanceScaleEmbedding.embedding([7], dim: $0) }
        return UNetInputs(sample: sample, timesteps: [999], encoderHiddenStates: ctx, textEmbeds: text, timeIds: ids, timestepCond: cond)
    }
}
