import ArgumentParser
import Foundation
import MixDQIO
import MixDQQuant

/// `mixdq search allocate`: the original's integer programme for one layer group, solved exactly by
/// GLPK; writes `model.<path>: bits` for exactly the group's layers.
struct SearchAllocateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allocate",
        abstract: "Choose one bit width per layer of a group: ratio-weighted mean within target ± tolerance, summed sensitivity maximised (exact MILP, GLPK).")
    @Option(help: "Sensitivity YAML 'model.<layer>: [s@2, s@4, s@8]' (SSIM or SQNR; higher is better).") var scores: String
    @Option(help: "Tensor-ratio YAML 'model.<layer>: ratio' (from `mixdq search ratios`); its layers are the model's.") var ratio: String
    @Option(help: "Candidate bit widths.") var bits = "2,4,8"
    @Option(help: "The bit width of each column of the score file.") var scoreBits = "2,4,8"
    @Option(parsing: .unconditional, help: "Target ratio-weighted mean bit width of the group.") var target: Double
    @Option(parsing: .unconditional, help: "Allowed distance of the mean from --target.") var tolerance = 0.02
    @Option(help: "content (path contains attn2 or ff), quality (the rest) or all.") var group = "all"
    @Option(help: "List of layers left out (e.g. the act-protect list; YAML or the original's .pt).") var exclude: String?
    @Option(parsing: .unconditional, help: "Also keep the group's packed weight bytes (2/4/8-bit: 1/4, 1/2, 1 byte per parameter) at most this; needs --params.")
    var maxBytes: Double?
    @Option(help: "Parameter-count YAML 'model.<layer>: count' (from `mixdq search ratios --type params`), for --max-bytes.") var params: String?
    @Option(parsing: .unconditional, help: "Seconds GLPK may take to prove the optimum; past it the command fails, writing nothing (default: no limit).") var timeLimit: Double?
    @Option(help: "Output bit config YAML.") var out: String

    func validate() throws {
        _ = try SearchInputs.bits(bits, flag: "--bits")
        _ = try SearchInputs.bits(scoreBits, flag: "--score-bits")
        _ = try SearchInputs.group(group)
        try SearchInputs.finite(target, flag: "--target")
        try SearchInputs.finite(tolerance, flag: "--tolerance", positive: false)
        if let timeLimit { try SearchInputs.finite(timeLimit, flag: "--time-limit") }
        if let maxBytes { try SearchInputs.finite(maxBytes, flag: "--max-bytes") }
        if maxBytes != nil && params == nil { throw ValidationError("--max-bytes needs --params (the layers' parameter counts)") }
        if params != nil && maxBytes == nil { throw ValidationError("--params applies only with --max-bytes") }
    }

    func run() throws {
        let request = BitAllocationRequest(
            scores: try SensitivityScores.load(SearchInputs.url(scores), columns: try SearchInputs.bits(scoreBits, flag: "--score-bits")),
            ratios: try LayerRatios.load(SearchInputs.url(ratio)),
            bits: try SearchInputs.bits(bits, flag: "--bits"), target: target, tolerance: tolerance,
            group: try SearchInputs.group(group), excluded: try SearchInputs.excluded(exclude),
            excludedSource: exclude ?? "the exclude list",
            maxBytes: maxBytes, parameters: try params.map { try LayerRatios.load(SearchInputs.url($0)) }, timeLimit: timeLimit)
        let allocation = try BitAllocation.solve(request)
        try AtomicFile.write(Data(allocation.yamlString().utf8), to: SearchInputs.url(out))
        print(Self.summary(allocation, request: request, out: out))
    }

    static func summary(_ a: BitAllocation, request r: BitAllocationRequest, out: String) -> String {
        let histogram = r.bits.sorted().map { b in "\(b)-bit: \(a.layers.filter { a.bits[$0] == b }.count)" }.joined(separator: ", ")
        var lines = [
            "\(r.group.rawValue) group: \(a.layers.count) layer(s) (\(histogram))",
            String(format: "objective (GLPK): %.6f (sum of scores at the chosen bits: %.6f)", a.objective, a.score),
            String(format: "mean bits: %.4f (target %g ±%g)", a.mean, r.target, r.tolerance),
        ]
        if let bytes = a.packedBytes, let maxBytes = r.maxBytes {
            lines.append(String(format: "packed weight bytes: %.0f (budget %.0f)", bytes, maxBytes))
        }
        lines.append("wrote \(out)")
        return lines.joined(separator: "\n")
    }
}
