import MixDQIO

extension ImageMetrics {
    /// Mean SSIM over the three channels, equal to
    /// `skimage.metrics.structural_similarity(a, b, channel_axis=2, win_size=windowSize, data_range=255)`
    /// on uint8 `H x W x 3` arrays: uniform `W x W` window, K1 0.01, K2 0.03, sample covariance
    /// (`W² / (W² - 1)`), float64. skimage filters with reflect padding and then drops `(W-1)/2`
    /// pixels at each border before averaging, so every window it keeps lies inside the image;
    /// this computes exactly those windows, from exact integer box sums.
    public static func ssim(_ a: RGBImage, _ b: RGBImage, windowSize: Int) throws -> Double {
        try checkComparable(a, b)
        let (width, height) = (a.width, a.height)
        guard windowSize >= 3, windowSize % 2 == 1, windowSize <= min(width, height) else {
            throw ImageMetricsError.invalidWindow(windowSize: windowSize, width: width, height: height)
        }
        var sum = 0.0
        for channel in 0..<3 {
            sum += channelSSIM(a, b, channel: channel, windowSize: windowSize)
        }
        return sum / 3
    }

    /// skimage's single-channel SSIM of one colour channel.
    private static func channelSSIM(_ a: RGBImage, _ b: RGBImage, channel: Int, windowSize: Int) -> Double {
        let (width, height) = (a.width, a.height)
        let (pa, pb) = (a.pixels, b.pixels)
        func table(_ value: (Int64, Int64) -> Int64) -> SummedAreaTable {
            SummedAreaTable(width: width, height: height) { pixel in
                value(Int64(pa[pixel * 3 + channel]), Int64(pb[pixel * 3 + channel]))
            }
        }
        let sumX = table { x, _ in x }, sumY = table { _, y in y }
        let sumXX = table { x, _ in x * x }, sumYY = table { _, y in y * y }, sumXY = table { x, y in x * y }

        let count = Double(windowSize * windowSize)
        let covarianceNorm = count / (count - 1)
        let c1 = (0.01 * dataRange) * (0.01 * dataRange)
        let c2 = (0.03 * dataRange) * (0.03 * dataRange)
        var total = 0.0
        for top in 0...(height - windowSize) {
            for left in 0...(width - windowSize) {
                // The same expressions, in the same order, as skimage.
                let ux = Double(sumX.boxSum(x: left, y: top, size: windowSize)) / count
                let uy = Double(sumY.boxSum(x: left, y: top, size: windowSize)) / count
                let uxx = Double(sumXX.boxSum(x: left, y: top, size: windowSize)) / count
                let uyy = Double(sumYY.boxSum(x: left, y: top, size: windowSize)) / count
                let uxy = Double(sumXY.boxSum(x: left, y: top, size: windowSize)) / count
                let vx = covarianceNorm * (uxx - ux * ux)
                let vy = covarianceNorm * (uyy - uy * uy)
                let vxy = covarianceNorm * (uxy - ux * uy)
                let numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
                let denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
                total += numerator / denominator
            }
        }
        let windows = (height - windowSize + 1) * (width - windowSize + 1)
        return total / Double(windows)
    }
}
