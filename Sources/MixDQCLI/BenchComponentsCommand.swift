import ArgumentParser
import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// `mixdq bench text-encoder`: one CLIP text encoder forward (SDXL's text_encoder or text_encoder_2) on
/// batch rows of 77 token ids, full size with seeded random weights or from a model folder.
struct BenchTextEncoder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text-encoder",
        abstract: "Time one CLIP text encoder forward (77 tokens per row) on a model folder or seeded random weights.",
        discussion: """
        The encoder type follows the config: CLIPTextModel (configs/models/sdxl-turbo-text-encoder.json, 123 M \
        params) or CLIPTextModelWithProjection (configs/models/sdxl-turbo-text-encoder-2.json, 695 M). Each row \
        is BOS, a prompt of valid ids, EOS 49407, then padding (49407 for a CLIPTextModel, 0 with projection, as \
        SDXL's two tokenizers pad), the same ids scripts/bench/diffusers_components.py feeds.

        By default every layer runs and the final LayerNorm, pooled output and projection are computed, as \
        transformers' forward with output_hidden_states=True does. --penultimate-only stops after the layer \
        that gives hidden_states[-2] (what the SDXL pipeline needs from text_encoder).
        """)

    @Flag(help: "Build the model from --model-config with seeded random weights (no checkpoint needed).")
    var randomWeights = false
    @Option(help: "A transformers CLIPTextConfig config.json (with --random-weights).") var modelConfig: String?
    @Option(help: "A pipeline folder or a text encoder folder (instead of --random-weights).") var model: String?
    @Option(help: "With --model: the component folder of a pipeline (text_encoder or text_encoder_2).")
    var component = "text_encoder_2"
    @Option var precision: Precision = .fp32
    @Option(help: "Rows of 77 tokens per forward.") var batch = 1
    @Option(help: "Timed runs.") var runs = 3
    @Option(help: "Untimed warm-up runs.") var warmup = 1
    @Option(help: "Seed for random weights.") var seed: UInt64 = 0
    @Flag(help: "Skip the last layer and the pooled output (SDXL's use of text_encoder).") var penultimateOnly = false
    @Flag(help: "Print one JSON line instead of the table.") var json = false
    @Flag(help: "Print time per op category (linear, attention, norms, other) of the last run.") var profile = false

    func validate() throws {
        if randomWeights == (model != nil) { throw ValidationError("give exactly one of --random-weights (with --model-config) or --model") }
        if randomWeights && modelConfig == nil { throw ValidationError("--random-weights needs --model-config") }
        try BenchBounds.check(batch: batch, runs: runs, warmup: warmup)
    }

    func run() throws {
        let t0 = Date()
        let encoder: CLIPTextModel
        var params = 0
        if randomWeights {
            let config = try CLIPTextConfig.load(URL(fileURLWithPath: modelConfig!))
            let source = RandomWeightSource(seed: seed)
            encoder = try CLIPTextModel(config: config, weights: source, precision: precision, packForInference: true)
            params = source.generatedParameters
        } else {
            encoder = try TextEncoderForward.load(model: model!, component: component, precision: precision)
        }
        if params == 0 { params = encoder.parameterCountIncludingEmbeddings }
        let buildSeconds = Date().timeIntervalSince(t0)
        let ids = BenchTokenIDs.rows(batch: batch, length: min(77, encoder.config.maxPositionEmbeddings),
                                     vocabSize: encoder.config.vocabSize, padWithZero: encoder.withProjection)

        let result = try BenchTiming.run(warmup: warmup, runs: runs, profile: profile, quiet: json) {
            _ = try encoder.encode(ids: ids, hiddenStateIndex: -2, includeLastHiddenState: !penultimateOnly)
        }
        let kind = encoder.withProjection ? "text-encoder-2" : "text-encoder"
        if json {
            result.printJSON(fields: [("component", "\"\(kind)\""), ("precision", "\"\(precision.rawValue)\""),
                                      ("batch", "\(batch)"), ("params", "\(params)"),
                                      ("build_s", String(format: "%.1f", buildSeconds))])
        } else {
            print("mixdq bench \(kind)  batch \(batch) x 77 tokens  \(precision.rawValue)  params \(params)"
                  + (penultimateOnly ? "  (penultimate only)" : ""))
            result.printTable(buildSeconds: buildSeconds)
        }
    }
}

/// `mixdq bench vae-decoder`: one VAE decode (AutoencoderKL.decode) of a `[1, 4, h/8, w/8]` latent, fp32.
struct BenchVAEDecoder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae-decoder",
        abstract: "Time one VAE decode (fp32; SDXL's VAE overflows in reduced precision) on a model folder or seeded random weights.",
        discussion: """
        Decodes a seeded Gaussian latent [batch, latent_channels, height/8, width/8] as the pipeline does \
        (latents / scaling_factor, post_quant_conv, decoder). With configs/models/sdxl-turbo-vae.json at 512x512 \
        one decode is about 2.5 TFLOP.
        """)

    @Flag(help: "Build the decoder from --model-config with seeded random weights (no checkpoint needed).")
    var randomWeights = false
    @Option(help: "A diffusers AutoencoderKL config.json (with --random-weights).") var modelConfig: String?
    @Option(help: "A pipeline folder holding vae/, or the vae/ folder (instead of --random-weights).") var model: String?
    @Option(help: "Output image height in pixels (latent = height/8).") var height = 512
    @Option(help: "Output image width in pixels (latent = width/8).") var width = 512
    @Option var batch = 1
    @Option(help: "Timed runs.") var runs = 2
    @Option(help: "Untimed warm-up runs.") var warmup = 1
    @Option(help: "Seed for random weights and the latent.") var seed: UInt64 = 0
    @Flag(help: "Print one JSON line instead of the table.") var json = false
    @Flag(help: "Print time per op category (conv, group_norm, attention, linear, other) of the last run.") var profile = false

    func validate() throws {
        if randomWeights == (model != nil) { throw ValidationError("give exactly one of --random-weights (with --model-config) or --model") }
        if randomWeights && modelConfig == nil { throw ValidationError("--random-weights needs --model-config") }
        try BenchBounds.check(height: height, width: width, batch: batch, runs: runs, warmup: warmup)
    }

    func run() throws {
        let t0 = Date()
        let decoder: AutoencoderKLDecoder
        var params = 0
        if randomWeights {
            let config = try VAEConfig.load(URL(fileURLWithPath: modelConfig!))
            let source = RandomWeightSource(seed: seed)
            decoder = try AutoencoderKLDecoder(config: config, weights: source, packForInference: true)   // wraps the source itself
            params = source.generatedParameters
        } else {
            let dir = try ModelFolder(URL(fileURLWithPath: model!)).component("vae")
            let config = try VAEConfig.load(dir.appendingPathComponent("config.json"))
            decoder = try AutoencoderKLDecoder(config: config, weights: try SafetensorsWeightSource.open(folder: dir), packForInference: true)
            params = decoder.parameterCount
        }
        let buildSeconds = Date().timeIntervalSince(t0)

        var g = SplitMix64(seed: seed &+ 1)
        let latents = Tensor(uninitializedShape: [batch, decoder.config.latentChannels, height / 8, width / 8])
        for i in 0..<latents.count { latents.data[i] = g.nextGaussian() }

        let result = try BenchTiming.run(warmup: warmup, runs: runs, profile: profile, quiet: json) {
            _ = try decoder.decode(latents: latents)
        }
        if json {
            result.printJSON(fields: [("component", "\"vae-decoder\""), ("precision", "\"fp32\""), ("batch", "\(batch)"),
                                      ("height", "\(height)"), ("width", "\(width)"), ("params", "\(params)"),
                                      ("build_s", String(format: "%.1f", buildSeconds))])
        } else {
            print("mixdq bench vae-decoder  \(batch) x \(height)x\(width)  fp32  params \(params)")
            result.printTable(buildSeconds: buildSeconds)
        }
    }
}

extension CLIPTextModel {
    /// Every parameter: the registered Linears plus embeddings and LayerNorm affine terms.
    var parameterCountIncludingEmbeddings: Int {
        let d = config.hiddenSize
        return registry.parameterCount + embeddings.tokenEmbedding.count + embeddings.positionEmbedding.count
            + (2 * layers.count + 1) * 2 * d
    }
}

/// Token id rows of the shape SDXL's tokenizers produce; scripts/bench/diffusers_components.py builds the same.
enum BenchTokenIDs {
    /// Row b: BOS 49406, a prompt of 12 + 5b valid ids, EOS 49407, then padding up to `length`
    /// (ids clamped into a smaller vocabulary for toy configs).
    static func rows(batch: Int, length: Int, vocabSize: Int, padWithZero: Bool) -> [[Int32]] {
        let bos = min(49406, vocabSize - 2), eos = min(49407, vocabSize - 1)
        let pad = padWithZero ? 0 : eos
        return (0..<batch).map { b in
            let promptLength = min(12 + 5 * b, length - 2)
            var row = [bos]
            for i in 0..<promptLength { row.append(1 + (i * 7919 + b * 104_729) % max(1, bos - 1)) }
            row.append(eos)
            while row.count < length { row.append(pad) }
            return row.prefix(length).map { Int32($0) }
        }
    }
}

/// Warm-up + timed runs with FLOP counting and an optional per-op profile of the last run.
struct BenchTiming {
    var times: [Double] = []
    var flops = 0.0
    var profile: [(String, Double)] = []
    var lastRunSeconds = 0.0
    var profiled = false

    static func run(warmup: Int, runs: Int, profile: Bool, quiet: Bool, _ body: () throws -> Void) throws -> BenchTiming {
        var r = BenchTiming()
        r.profiled = profile
        for i in 0..<(warmup + runs) {
            FLOPCounter.enabled = true
            FLOPCounter.reset()
            OpProfiler.enabled = profile
            OpProfiler.reset()
            let start = Date()
            try body()
            let dt = Date().timeIntervalSince(start)
            r.flops = FLOPCounter.flops
            r.lastRunSeconds = dt
            if i >= warmup { r.times.append(dt) }
            if !quiet {
                StandardError.write("run \(i + 1)/\(warmup + runs)\(i < warmup ? " (warm-up)" : ""): \(String(format: "%.3f", dt)) s\n")
            }
        }
        OpProfiler.enabled = false
        FLOPCounter.enabled = false
        if profile {
            r.profile = OpProfiler.report
            let measured = r.profile.reduce(0) { $0 + $1.1 }
            r.profile.append(("other", max(0, r.lastRunSeconds - measured)))
        }
        return r
    }

    var median: Double { times.sorted()[times.count / 2] }
    /// Peak RSS in GiB (2^30 bytes), the unit the PyTorch peers report.
    var peakGiB: Double { Double(ProcessMemory.peakResidentBytes) / 1_073_741_824 }
    var loadAverage: String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
    }

    func printJSON(fields: [(String, String)]) {
        var parts = [("runtime", "\"mixdq\"")] + fields
        parts += [("median_s", String(format: "%.4f", median)),
                  ("times", "[" + times.map { String(format: "%.4f", $0) }.joined(separator: ",") + "]"),
                  ("gflop", String(format: "%.3f", flops / 1e9)),
                  ("gflops_per_s", String(format: "%.2f", flops / median / 1e9)),
                  ("peak_rss_gb", String(format: "%.3f", peakGiB)),
                  ("loadavg", "\"\(loadAverage)\"")]
        if profiled {
            let entries = profile.map { "\"\($0.0)\":\(String(format: "%.4f", $0.1))" }.joined(separator: ",")
            parts.append(("profile_s", "{\(entries)}"))
        }
        print("{" + parts.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
    }

    func printTable(buildSeconds: Double) {
        print(String(format: "  median %.3f s over %d runs (min %.3f, max %.3f); %.2f GFLOP/forward -> %.1f GFLOP/s",
                     median, times.count, times.min()!, times.max()!, flops / 1e9, flops / median / 1e9))
        if profiled {
            for (op, sec) in profile {
                let name = op.count < 12 ? op + String(repeating: " ", count: 12 - op.count) : op
                print("  " + name + String(format: " %8.3f s  %5.1f%%", sec, 100 * sec / max(lastRunSeconds, 1e-9)))
            }
        }
        print(String(format: "  peak RSS %.2f GiB; build %.1f s; load average at end %@", peakGiB, buildSeconds, loadAverage))
    }
}
