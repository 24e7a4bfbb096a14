import Foundation
import MixDQIO

/// The Pareto report as a scatter plot: mean bits across, the mean metric up; Pareto-optimal
/// candidates filled red and joined as a front (labelled with their names), dominated ones hollow
/// grey, the chosen one ringed in blue. Candidates whose metric is not finite (PSNR of an image equal
/// to FP) cannot be placed and are counted in the caption.
public struct ParetoPlot {
    public var report: ParetoReport
    public var chosen: String?
    public var title: String

    public static let width = 900, height = 620
    static let left = 80.0, right = 40.0, top = 56.0, bottom = 64.0, fontSize = 12.0

    public init(report: ParetoReport, chosen: String?, title: String) {
        self.report = report; self.chosen = chosen; self.title = title
    }

    /// About `count` round tick values (1, 2 or 5 times a power of ten apart) covering lo...hi.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / Double(max(count - 1, 1))
        let power = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? 10 * power
        // Counted, not accumulated: a step below the values' resolution cannot loop forever.
        let first = (lo / step).rounded(.up)
        var values: [Double] = []
        for i in 0..<(count * 3) {
            let v = (first + Double(i)) * step
            guard v <= hi + step * 1e-9 else { break }
            values.append(abs(v) < step * 1e-9 ? 0 : v)
        }
        return values
    }

    /// lo...hi widened by 5 % each side (or ±1 unit around a single value).
    static func padded(_ values: [Double]) -> (Double, Double) {
        guard let lo = values.min(), let hi = values.max() else { return (0, 1) }
        // Equal values, or a spread below what a plot can show: a range around them.
        if hi - lo <= max(abs(lo), abs(hi)) * 1e-9 { let d = max(abs(lo) * 0.05, 1e-3); return (lo - d, hi + d) }
        let d = (hi - lo) * 0.05
        return (lo - d, hi + d)
    }

    static func label(_ v: Double, step: Double) -> String {
        let decimals = max(0, min(6, Int(-floor(log10(step)))))
        return String(format: "%.\(decimals)f", v)
    }

    public func render() throws -> RGBImage {
        let metric = report.metric
        let placed = report.results.filter { $0.mean(metric).isFinite }
        let canvas = try CairoCanvas(width: Self.width, height: Self.height, purpose: "Pareto plot")
        let (x0, x1) = Self.padded(placed.map(\.meanBits)), (y0, y1) = Self.padded(placed.map { $0.mean(metric) })
        let plotW = Double(Self.width) - Self.left - Self.right, plotH = Double(Self.height) - Self.top - Self.bottom
        func px(_ v: Double) -> Double { Self.left + (v - x0) / (x1 - x0) * plotW }
        func py(_ v: Double) -> Double { Self.top + plotH - (v - y0) / (y1 - y0) * plotH }

        canvas.setColor(0, 0, 0)
        canvas.text(canvas.fitted(title, maxWidth: Double(Self.width) - 20, size: Self.fontSize + 2, bold: true), x: 10, y: 24,
                    size: Self.fontSize + 2, bold: true)
        let skipped = report.results.count - placed.count
        let caption = "\(report.optimal.count) of \(report.results.count) candidate(s) Pareto-optimal in (mean bits, model bytes, \(metric.label))"
            + (skipped > 0 ? "; \(skipped) with a non-finite \(metric.label) not drawn" : "")
        canvas.setColor(0.3, 0.3, 0.3)
        canvas.text(canvas.fitted(caption, maxWidth: Double(Self.width) - 20, size: Self.fontSize), x: 10, y: 42, size: Self.fontSize)

        // Grid, ticks and axis titles.
        let xTicks = Self.ticks(x0, x1), yTicks = Self.ticks(y0, y1)
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1, yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
        for t in xTicks {
            canvas.setColor(0.9, 0.9, 0.9)
            canvas.strokeLine([(px(t), Self.top), (px(t), Self.top + plotH)])
            canvas.setColor(0, 0, 0)
            canvas.text(Self.label(t, step: xStep), x: px(t), y: Self.top + plotH + 18, size: Self.fontSize, alignment: .center)
        }
        for t in yTicks {
            canvas.setColor(0.9, 0.9, 0.9)
            canvas.strokeLine([(Self.left, py(t)), (Self.left + plotW, py(t))])
            canvas.setColor(0, 0, 0)
            canvas.text(Self.label(t, step: yStep), x: Self.left - 6, y: py(t) + 4, size: Self.fontSize, alignment: .right)
        }
        canvas.setColor(0, 0, 0)
        canvas.strokeRectangle(x: Self.left, y: Self.top, width: plotW, height: plotH)
        canvas.text("mean bits (ratio-weighted)", x: Self.left + plotW / 2, y: Double(Self.height) - 16, size: Self.fontSize, alignment: .center)
        canvas.text("mean \(metric.label)\(metric == .psnr ? " (dB)" : "") vs FP", x: 20, y: Self.top + plotH / 2, size: Self.fontSize,
                    alignment: .center, rotated: true)

        // Dominated candidates under the front, optimal ones on top.
        let optimal = placed.filter { report.isOptimal($0.name) }.sorted { $0.meanBits < $1.meanBits }
        canvas.setColor(0.55, 0.55, 0.55)
        for r in placed where !report.isOptimal(r.name) {
            canvas.circle(x: px(r.meanBits), y: py(r.mean(metric)), radius: 4, filled: false)
        }
        canvas.setColor(0.85, 0.1, 0.1)
        canvas.strokeLine(optimal.map { (px($0.meanBits), py($0.mean(metric))) }, lineWidth: 1.5, dashed: true)
        for r in optimal {
            canvas.circle(x: px(r.meanBits), y: py(r.mean(metric)), radius: 5, filled: true)
        }
        canvas.setColor(0.5, 0.05, 0.05)
        for r in optimal {
            // Right of the point, or left of it where the name would leave the plot.
            let x = px(r.meanBits), fits = x + 7 + canvas.textWidth(r.name, size: Self.fontSize - 1) <= Double(Self.width) - 4
            canvas.text(r.name, x: fits ? x + 7 : x - 7, y: py(r.mean(metric)) - 7, size: Self.fontSize - 1, alignment: fits ? .left : .right)
        }
        if let chosen, let r = placed.first(where: { $0.name == chosen }) {
            canvas.setColor(0.1, 0.3, 0.9)
            canvas.circle(x: px(r.meanBits), y: py(r.mean(metric)), radius: 9, filled: false, lineWidth: 2)
            canvas.text("chosen", x: px(r.meanBits) + 11, y: py(r.mean(metric)) + 16, size: Self.fontSize - 1, bold: true)
        }
        return try canvas.image()
    }
}
