import Foundation
import MixDQQuant

/// The Pareto table of a selection (issue 9 item 6): every candidate's (mean bits, model bytes,
/// quality), which ones are Pareto-optimal, and for the others one optimal candidate that beats them.
public struct ParetoReport {
    public let metric: ImageComparison.Metric
    /// Sorted by mean bits, then bytes, then name.
    public let results: [CandidateResult]
    /// Candidate name -> the name of an optimal candidate dominating it; absent for optimal ones.
    public let dominatedBy: [String: String]

    public init(results: [CandidateResult], metric: ImageComparison.Metric) {
        self.metric = metric
        let sorted = results.sorted { a, b in
            if a.meanBits != b.meanBits { return a.meanBits < b.meanBits }
            if a.bytes != b.bytes { return a.bytes < b.bytes }
            return a.name < b.name
        }
        self.results = sorted
        var dominated: [String: String] = [:]
        for (i, d) in ParetoFront.dominators(sorted.map { $0.paretoPoint(metric) }).enumerated() {
            if let d { dominated[sorted[i].name] = sorted[d].name }
        }
        dominatedBy = dominated
    }

    public func isOptimal(_ name: String) -> Bool { dominatedBy[name] == nil }
    public var optimal: [CandidateResult] { results.filter { isOptimal($0.name) } }

    public var csv: String {
        var lines = ["candidate,mean_bits,model_bytes,mean_\(metric.rawValue),pareto_optimal,dominated_by"]
        for r in results {
            lines.append([ReportFormat.csvField(r.name), ReportFormat.bits(r.meanBits), ReportFormat.bytes(r.bytes), ReportFormat.value(r.mean(metric), metric),
                          isOptimal(r.name) ? "yes" : "no", ReportFormat.csvField(dominatedBy[r.name] ?? "")].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public var markdown: String {
        var lines = [
            "# Pareto report: \(optimal.count) of \(results.count) candidate(s) optimal",
            "",
            "Fewer mean bits, fewer model bytes and a higher mean \(metric.label) are each better; a candidate is dominated when another is at least as good on all three and better on one. Plot: `pareto.png`.",
            "",
            "| candidate | mean bits | model bytes | mean \(metric.label) | Pareto-optimal | dominated by |",
            "|---|---:|---:|---:|---|---|",
        ]
        for r in results {
            let optimal = isOptimal(r.name)
            lines.append("| \(optimal ? "**\(r.name)**" : r.name) | \(ReportFormat.bits(r.meanBits)) | \(ReportFormat.bytes(r.bytes)) | \(ReportFormat.value(r.mean(metric), metric)) | \(optimal ? "yes" : "no") | \(dominatedBy[r.name] ?? "") |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
