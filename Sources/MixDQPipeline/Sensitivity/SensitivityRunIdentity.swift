import Foundation
import MixDQQuant

/// What makes two sensitivity runs the same run (so their journal and shards may be combined):
/// the flags that change a score and the contents of the inputs. Written, in this order, as the
/// identity lines of the output file and the journal.
public enum SensitivityRunIdentity {
    public struct QualityInputs { public var calibration: URL; public init(calibration: URL) { self.calibration = calibration } }
    public struct ContentInputs {
        public var settings: ContentSensitivity.Settings
        public var ssimWindow: Int
        public init(settings: ContentSensitivity.Settings, ssimWindow: Int) { self.settings = settings; self.ssimWindow = ssimWindow }
    }

    public static func make(plan: SensitivityPlan, checkpoint: URL, settings: QuantSettings, quality: QualityInputs?, content: ContentInputs?) throws
        -> [(key: String, value: String)] {
        var id: [(key: String, value: String)] = [
            ("type", plan.type.rawValue),
            ("group", plan.group.rawValue),
            ("metric", plan.metricOverride?.rawValue ?? "by group (content: ssim, quality: sqnr)"),
            ("bits", plan.bits.map(String.init).joined(separator: ",")),
            ("layers", plan.layersPattern ?? "all"),
            ("checkpoint-fnv1a64", try ContentDigest.hex(of: checkpoint)),
            // The config's quantizer settings (BOS-aware K/V changes a score; the checkpoint does not carry it).
            ("quant", "bit_widths=\(settings.bitWidths.map(String.init).joined(separator: ",")) sym=\(settings.weightSymmetric) bos_aware=\(settings.bosAware)"),
        ]
        if let quality {
            id.append(("calibration-fnv1a64", try ContentDigest.hex(of: quality.calibration)))
        }
        if let c = content {
            let s = c.settings
            id += [("prompts", "\(s.prompts.count)"), ("prompts-fnv1a64", ContentDigest.hex(of: s.prompts.joined(separator: "\n"))),
                   ("ssim-window", "\(c.ssimWindow)"), ("seed", "\(s.seed)"), ("steps", "\(s.steps)"),
                   ("guidance", "\(s.guidance)"), ("size", "\(s.width)x\(s.height)")]
        }
        return id
    }
}
