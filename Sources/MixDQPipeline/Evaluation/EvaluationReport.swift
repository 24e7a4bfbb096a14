import Foundation

/// The result of `ImageEvaluation`: per-image rows, the summary table and the per-image CSV.
public struct EvaluationReport: Sendable {
    public let rows: [ImageEvaluation.Row]
    public let ssimWindows: [Int]
    public let hasReference: Bool
    public let hasCaptions: Bool

    public var accuracy: CaptionAccuracy {
        var accuracy = CaptionAccuracy()
        for check in rows.compactMap(\.check) { accuracy.add(check) }
        return accuracy
    }

    /// Mean SSIM at `window` over the images it fits, and how many that is.
    public func meanSSIM(window: Int) -> (mean: Double, images: Int)? {
        let values = rows.compactMap { $0.ssim[window] }
        return values.isEmpty ? nil : (values.reduce(0, +) / Double(values.count), values.count)
    }

    /// Mean PSNR over the images that differ from their reference (identical ones have an
    /// infinite PSNR and are counted apart).
    public var meanPSNR: (mean: Double?, images: Int, identical: Int) {
        let values = rows.compactMap(\.psnr)
        let finite = values.filter(\.isFinite)
        return (finite.isEmpty ? nil : finite.reduce(0, +) / Double(finite.count), finite.count, values.count - finite.count)
    }

    /// The table `mixdq eval` prints.
    public var summary: String {
        var lines = ["images: \(rows.count)"]
        if hasReference {
            for window in ssimWindows {
                if let (mean, count) = meanSSIM(window: window) {
                    let skipped = rows.count - count
                    lines.append(String(format: "SSIM %dx%d: %.6f (mean over %d image(s)%@)", window, window, mean, count,
                                        skipped > 0 ? ", n/a for \(skipped) smaller than the window" : ""))
                } else {
                    lines.append("SSIM \(window)x\(window): n/a (every image is smaller than the window)")
                }
            }
            let psnr = meanPSNR
            let identical = psnr.identical > 0 ? "; \(psnr.identical) identical to the reference (PSNR inf)" : ""
            if let mean = psnr.mean {
                lines.append(String(format: "PSNR: %.3f dB (mean over %d image(s)%@)", mean, psnr.images, identical))
            } else {
                lines.append("PSNR: inf (every image is identical to its reference)")
            }
        }
        if hasCaptions {
            let accuracy = accuracy
            lines.append("caption accuracy (share of images right; an object attribute counts when every object has it right):")
            lines.append("attribute    accuracy   right/images")
            for attribute in CaptionAccuracy.Attribute.allCases {
                let share = accuracy.accuracy(attribute) ?? 0
                lines.append(String(format: "%@ %8.3f   %d/%d", attribute.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0),
                                    share, accuracy.right[attribute, default: 0], accuracy.images))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// One line per image. SSIM at a window larger than the image and attributes without a
    /// caption are "n/a"; PSNR of identical images is "inf"; verdicts are 1 or 0.
    public var csv: String {
        var header = ["image", "width", "height"]
        if hasReference { header += ssimWindows.map { "ssim_\($0)" } + ["psnr"] }
        if hasCaptions {
            header += ["caption"] + CaptionAccuracy.Attribute.allCases.map(\.rawValue) + ["read_background", "read_objects"]
        }
        var lines = [header.joined(separator: ",")]
        for row in rows {
            var fields = [row.name, String(row.width), String(row.height)]
            if hasReference {
                fields += ssimWindows.map { row.ssim[$0].map { String(format: "%.9f", $0) } ?? "n/a" }
                fields.append(row.psnr.map { $0.isFinite ? String(format: "%.6f", $0) : "inf" } ?? "n/a")
            }
            if hasCaptions, let check = row.check {
                fields.append(row.caption ?? "")
                fields += CaptionAccuracy.Attribute.allCases.map { CaptionAccuracy.verdict(check, $0) ? "1" : "0" }
                fields.append(check.readBackground.rawValue)
                fields.append(check.objects.map(Self.describe).joined(separator: "; "))
            }
            lines.append(fields.map(Self.csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What the checker read for one object, e.g. "colour 0.98, centroid (26.0, 64.0), large circle IoU 1.000".
    public static func describe(_ object: CaptionCheck.ObjectCheck) -> String {
        var parts = [String(format: "colour %.2f", object.colourShare)]
        parts.append(object.centroid.map { String(format: "centroid (%.1f, %.1f)", $0.x, $0.y) } ?? "colour absent")
        parts.append(object.bestTemplate.map { String(format: "%@ %@ IoU %.3f", $0.size.rawValue, $0.shape.rawValue, $0.iou) }
                     ?? "no template (colour absent in the cell)")
        return parts.joined(separator: ", ")
    }

    /// RFC 4180 quoting for fields with commas, quotes or line breaks (captions have commas).
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
