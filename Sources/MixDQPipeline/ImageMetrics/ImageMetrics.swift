import MixDQIO

/// Full-reference quality of one 8-bit RGB image against another, computed as scikit-image does
/// (the original MixDQ scores content layers with `skimage.metrics.structural_similarity`), so our
/// numbers can be compared with the paper's. `ssim` and `psnr` live in their own files.
public enum ImageMetrics {
    /// The peak value of an 8-bit channel: skimage's `data_range=255`.
    static let dataRange: Double = 255

    /// Both metrics compare pixel by pixel: the images must have the same, non-empty size.
    static func checkComparable(_ a: RGBImage, _ b: RGBImage) throws {
        guard a.width == b.width, a.height == b.height else {
            throw ImageMetricsError.sizeMismatch(first: a.size, second: b.size)
        }
        guard a.width > 0, a.height > 0 else {
            throw ImageMetricsError.emptyImage(width: a.width, height: a.height)
        }
    }
}

extension RGBImage {
    /// `(width, height)`, for messages.
    var size: ImageMetricsError.Size { ImageMetricsError.Size(width: width, height: height) }
}
