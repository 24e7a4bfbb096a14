import Foundation
import MixDQIO
import MixDQQuant

/// How a candidate's images are compared with the FP images of the same prompts: SSIM (skimage's,
/// window 7 by default; 511 is the original's near-global window) and PSNR, both in Double on the
/// 8-bit images (not the original's one-image uint8 MSE, which wraps around). One of them ranks.
public struct ImageComparison: Equatable, Sendable {
    public enum Metric: String, CaseIterable, Sendable {
        case ssim, psnr
        public var label: String { self == .ssim ? "SSIM" : "PSNR" }
    }

    public var ranking: Metric
    public var ssimWindow: Int

    public init(ranking: Metric = .ssim, ssimWindow: Int = 7) {
        self.ranking = ranking; self.ssimWindow = ssimWindow
    }

    /// The window must be odd, at least 3 and fit the image (checked before anything is rendered).
    public func check(width: Int, height: Int) throws {
        guard ssimWindow >= 3, ssimWindow % 2 == 1 else {
            throw SearchInputError("--ssim-window \(ssimWindow): expected an odd window of at least 3 (7 standard, 511 the original's)")
        }
        guard ssimWindow <= min(width, height) else {
            throw SearchInputError("--ssim-window \(ssimWindow) does not fit the \(width)x\(height) images; use a window up to \(min(width, height) - (min(width, height) % 2 == 0 ? 1 : 0)) (7 standard)")
        }
    }

    /// SSIM and PSNR of every candidate image against the FP image of the same prompt.
    public func scores(fp: [URL], candidate: [URL]) throws -> [PromptScore] {
        try zip(fp, candidate).map { f, c in
            let a = try RGBImage.readPNG(f), b = try RGBImage.readPNG(c)
            do {
                return PromptScore(ssim: try ImageMetrics.ssim(a, b, windowSize: ssimWindow), psnr: try ImageMetrics.psnr(a, b))
            } catch let error as ImageMetricsError {
                throw SearchInputError("\(c.path) against \(f.path): \(error.description)")
            }
        }
    }
}

/// One prompt's comparison of a candidate image with the FP image.
public struct PromptScore: Equatable, Sendable {
    public var ssim: Double
    /// dB; +inf for identical images.
    public var psnr: Double
    public init(ssim: Double, psnr: Double) { self.ssim = ssim; self.psnr = psnr }

    public func value(_ metric: ImageComparison.Metric) -> Double { metric == .ssim ? ssim : psnr }
}
