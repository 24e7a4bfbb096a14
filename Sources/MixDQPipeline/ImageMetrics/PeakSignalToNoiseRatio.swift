import Foundation
import MixDQIO

extension ImageMetrics {
    /// `skimage.metrics.peak_signal_noise_ratio(a, b, data_range=255)`: `10 log10(255² / MSE)` in dB,
    /// MSE over every channel of every pixel. Identical images give `+infinity` (skimage: `inf`,
    /// with a divide-by-zero warning); Swift prints it as `inf`.
    public static func psnr(_ a: RGBImage, _ b: RGBImage) throws -> Double {
        try checkComparable(a, b)
        // Exact: at most 65025 per sample, summed over an image that fits in memory.
        var squaredError: Int64 = 0
        for (x, y) in zip(a.pixels, b.pixels) {
            let d = Int64(x) - Int64(y)
            squaredError += d * d
        }
        if squaredError == 0 { return .infinity }
        let mse = Double(squaredError) / Double(a.pixels.count)
        return 10 * log10(dataRange * dataRange / mse)
    }
}
