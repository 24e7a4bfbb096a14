import ArgumentParser
import Foundation
import MixDQIO
import MixDQQuant

/// `mixdq search allocate-scan`: the original's (a, k) grid (mixdq-method.md §6.5): per grid point
/// the content and quality programmes, their union written as `<type>_<a>_<k>.yaml`; grid points
/// whose group targets leave their bits' range, or whose programme is infeasible, are skipped.
struct SearchAllocateScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allocate-scan",
        abstract: "Scan overall targets a and content/quality splits k, writing one candidate bit config per feasible (a, k).")
    @Option(help: "weight or act: the file prefix and the default bits and k range.") var type: String
    @Option(parsing: .unconditional, help: "Overall target A: a is scanned over [A - a-span, A].") var target: Double
    @Option(help: "k = a_content / a_quality as lo,hi,n (default weight 0.46,1.36,10; act 0.94,1.09,20).") var kScan: String?
    @Option(parsing: .unconditional, help: "Number of a values (1: just --target).") var aScan = 10
    @Option(parsing: .unconditional, help: "Width of the a range below --target.") var aSpan = 0.3
    @Option(help: "Content (SSIM) sensitivity YAML.") var contentScores: String
    @Option(help: "Quality (SQNR) sensitivity YAML.") var qualityScores: String
    @Option(help: "Tensor-ratio YAML (from `mixdq search ratios`).") var ratio: String
    @Option(help: "Content candidate bits (default weight 2,4,8; act 4,8).") var contentBits: String?
    @Option(help: "Quality candidate bits.") var qualityBits = "4,8"
    @Option(help: "The bit width of each column of the score files.") var scoreBits = "2,4,8"
    @Option(parsing: .unconditional, help: "Allowed distance of each group's mean from its target.") var tolerance = 0.02
    @Option(help: "List of layers left out of both groups (the act-protect list; YAML or the original's .pt).") var exclude: String?
    @Option(parsing: .unconditional, help: "Seconds GLPK may take to prove each programme's optimum; past it the command fails (default: no limit).") var timeLimit: Double?
    @Option(help: "Output folder for the candidate YAMLs and scan.csv.") var out: String

    static let defaultKScan = ["weight": "0.46,1.36,10", "act": "0.94,1.09,20"]
    static let maxGridPoints = 10_000

    func validate() throws {
        guard Self.defaultKScan[type] != nil else { throw ValidationError("--type \(type): expected weight or act") }
        try SearchInputs.finite(target, flag: "--target")
        try SearchInputs.finite(aSpan, flag: "--a-span", positive: false)
        try SearchInputs.finite(tolerance, flag: "--tolerance", positive: false)
        if let timeLimit { try SearchInputs.finite(timeLimit, flag: "--time-limit") }
        guard (1...1000).contains(aScan) else { throw ValidationError("--a-scan \(aScan): expected 1...1000 values") }
        let k = try kGrid()
        guard k.count * aScan <= Self.maxGridPoints else {
            throw ValidationError("--a-scan × --k-scan: \(k.count * aScan) grid points, at most \(Self.maxGridPoints)")
        }
        _ = try SearchInputs.bits(resolvedContentBits, flag: "--content-bits")
        _ = try SearchInputs.bits(qualityBits, flag: "--quality-bits")
        _ = try SearchInputs.bits(scoreBits, flag: "--score-bits")
    }

    var resolvedContentBits: String { contentBits ?? (type == "act" ? "4,8" : "2,4,8") }

    func kGrid() throws -> [Double] { try Self.kGrid(kScan ?? Self.defaultKScan[type] ?? "", flag: "--k-scan") }

    /// "lo,hi,n" → n values from lo to hi.
    static func kGrid(_ text: String, flag: String) throws -> [Double] {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 3, let lo = Double(parts[0]), let hi = Double(parts[1]), let n = Int(parts[2]),
              lo.isFinite, hi.isFinite, lo > 0, hi >= lo, (1...1000).contains(n) else {
            throw ValidationError("\(flag) \(text): expected lo,hi,n with 0 < lo <= hi and n in 1...1000")
        }
        return AllocationScan.linspace(lo, hi, n)
    }

    func run() throws {
        let columns = try SearchInputs.bits(scoreBits, flag: "--score-bits")
        let ratios = try LayerRatios.load(SearchInputs.url(ratio))
        let excluded = try SearchInputs.excluded(exclude)
        let content = BitAllocationRequest(
            scores: try SensitivityScores.load(SearchInputs.url(contentScores), columns: columns), ratios: ratios,
            bits: try SearchInputs.bits(resolvedContentBits, flag: "--content-bits"), target: target, tolerance: tolerance,
            group: .content, excluded: excluded, excludedSource: exclude ?? "the exclude list", timeLimit: timeLimit)
        let quality = BitAllocationRequest(
            scores: try SensitivityScores.load(SearchInputs.url(qualityScores), columns: columns), ratios: ratios,
            bits: try SearchInputs.bits(qualityBits, flag: "--quality-bits"), target: target, tolerance: tolerance,
            group: .quality, excluded: excluded, excludedSource: exclude ?? "the exclude list", timeLimit: timeLimit)
        let r = try AllocationScan.contentToQualityRatio(ratios)
        print(String(format: "r = sum ratio(content) / sum ratio(quality) = %.4f", r))

        let outDir = SearchInputs.url(out)
        var csv = ["file,a,k,target_content,target_quality,mean_content,mean_quality,mean_all,objective_content,objective_quality,status"]
        var written = 0
        let outcomes = try AllocationScan.run(
            aValues: aScan == 1 ? [target] : AllocationScan.linspace(target - aSpan, target, aScan), kValues: try kGrid(),
            content: content, quality: quality)
        for outcome in outcomes {
            switch outcome {
            case let .solved(c):
                let name = c.fileName(prefix: type)
                try AtomicFile.write(Data(c.yamlString().utf8), to: outDir.appendingPathComponent(name))
                written += 1
                print(String(format: "a=%.2f k=%.2f: content %.3f -> %.4f, quality %.3f -> %.4f, mean %.4f: %@",
                             c.a, c.k, c.targets.content, c.content.mean, c.targets.quality, c.quality.mean, c.mean, name))
                csv.append(String(format: "%@,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,written", name, c.a, c.k, c.targets.content,
                                  c.targets.quality, c.content.mean, c.quality.mean, c.mean, c.content.objective, c.quality.objective))
            case let .skipped(a, k, t, reason):
                print(String(format: "a=%.2f k=%.2f: skipped (%@)", a, k, reason))
                csv.append(String(format: ",%.6f,%.6f,%.6f,%.6f,,,,,,skipped: %@", a, k, t.content, t.quality, reason))
            }
        }
        try AtomicFile.write(Data((csv.joined(separator: "\n") + "\n").utf8), to: outDir.appendingPathComponent("scan.csv"))
        print("wrote \(written) candidate(s) of \(outcomes.count) grid point(s) to \(out) (summary: scan.csv)")
        guard written > 0 else { throw CommandError("no (a, k) grid point was feasible; see \(outDir.appendingPathComponent("scan.csv").path)") }
    }
}
