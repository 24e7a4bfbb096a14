import Foundation

/// How the reports print numbers (the CSV and Markdown agree digit for digit).
enum ReportFormat {
    static func bits(_ v: Double) -> String { String(format: "%.4f", v) }
    static func bytes(_ v: Double) -> String { String(format: "%.0f", v) }
    /// Short form for labels: "6.65 MB" (10^6 bytes).
    static func megabytes(_ v: Double) -> String { String(format: v < 1e7 ? "%.2f MB" : "%.0f MB", v / 1e6) }
    static func value(_ v: Double, _ metric: ImageComparison.Metric) -> String {
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        return String(format: metric == .ssim ? "%.6f" : "%.4f", v)
    }
    /// RFC 4180 quoting for a field holding a comma, quote or line break (a candidate file's name).
    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
