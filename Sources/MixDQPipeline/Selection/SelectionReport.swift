import Foundation

/// The ranking of a selection as CSV and Markdown: per candidate its mean bits, model bytes,
/// whether it is Pareto-optimal, and SSIM and PSNR per prompt and on average.
public struct SelectionReport {
    public var kind: SelectionKind
    public var comparison: ImageComparison
    public var prompts: [String]
    /// Best first (`CandidateResult.ranked`).
    public var ranked: [CandidateResult]
    /// Where the mean bits' ratios came from (a ratio file, or measured on the model).
    public var ratioSource: String
    public var pareto: ParetoReport

    public init(kind: SelectionKind, comparison: ImageComparison, prompts: [String], results: [CandidateResult], ratioSource: String) {
        self.kind = kind; self.comparison = comparison; self.prompts = prompts; self.ratioSource = ratioSource
        ranked = CandidateResult.ranked(results, by: comparison.ranking)
        pareto = ParetoReport(results: results, metric: comparison.ranking)
    }

    public var chosen: CandidateResult? { ranked.first }

    /// `rank,candidate,mean_bits,model_bytes,pareto_optimal,mean_ssim,mean_psnr,ssim_0..ssim_{N-1},psnr_0..psnr_{N-1}`.
    public var csv: String {
        let n = prompts.count
        let header = ["rank", "candidate", "mean_bits", "model_bytes", "pareto_optimal", "mean_ssim", "mean_psnr"]
            + (0..<n).map { "ssim_\($0)" } + (0..<n).map { "psnr_\($0)" }
        var lines = [header.joined(separator: ",")]
        for (i, r) in ranked.enumerated() {
            let row = ["\(i + 1)", ReportFormat.csvField(r.name), ReportFormat.bits(r.meanBits), ReportFormat.bytes(r.bytes), pareto.isOptimal(r.name) ? "yes" : "no",
                       ReportFormat.value(r.mean(.ssim), .ssim), ReportFormat.value(r.mean(.psnr), .psnr)]
                + r.scores.map { ReportFormat.value($0.ssim, .ssim) } + r.scores.map { ReportFormat.value($0.psnr, .psnr) }
            lines.append(row.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public var markdown: String {
        let metric = comparison.ranking
        let metricText = metric == .ssim ? "SSIM (window \(comparison.ssimWindow))" : "PSNR (dB)"
        var lines = [
            "# mixdq search select: \(kind.rawValue) candidates",
            "",
            "Ranked by mean \(metricText) against the FP images over \(prompts.count) prompt(s); chosen: **\(chosen?.name ?? "-")**.",
            "Mean bits: ratio-weighted (\(ratioSource)) over the layers the candidate quantizes. Model bytes: the layers' weights as deployed "
                + "(packed 2/4/8-bit codes: 1/4, 1/2, 1 byte per parameter; FP layers 4), as `--max-bytes` counts them. "
                + "Contact sheet: `contact_sheet.png`; Pareto table: `pareto.md`; every number: `report.csv`.",
            "",
        ]
        let perPrompt = (0..<prompts.count).map { "\(metric.label) #\($0)" }
        lines.append((["rank", "candidate", "mean bits", "model bytes", "Pareto", "mean SSIM", "mean PSNR (dB)"] + perPrompt)
            .joined(separator: " | ").wrappedInPipes)
        lines.append((["---:", "---", "---:", "---:", "---", "---:", "---:"] + perPrompt.map { _ in "---:" }).joined(separator: "|").wrappedInPipes)
        for (i, r) in ranked.enumerated() {
            let row = ["\(i + 1)", i == 0 ? "**\(r.name)**" : r.name, ReportFormat.bits(r.meanBits), ReportFormat.bytes(r.bytes),
                       pareto.isOptimal(r.name) ? "yes" : "", ReportFormat.value(r.mean(.ssim), .ssim), ReportFormat.value(r.mean(.psnr), .psnr)]
                + r.scores.map { ReportFormat.value($0.value(metric), metric) }
            lines.append(row.joined(separator: " | ").wrappedInPipes)
        }
        lines.append("")
        lines.append("Prompts:")
        lines.append("")
        for (i, p) in prompts.enumerated() { lines.append("\(i). \(p.replacingOccurrences(of: "\n", with: " "))") }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    /// A markdown table row from its cells joined by " | ".
    var wrappedInPipes: String { "| " + self + " |" }
}
