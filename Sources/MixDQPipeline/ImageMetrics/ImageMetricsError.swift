import Foundation

/// Images that cannot be compared, or an SSIM window that does not fit them. The caller adds the
/// file names (the metrics see only pixels).
public enum ImageMetricsError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public struct Size: Equatable, Sendable, CustomStringConvertible {
        public let width: Int
        public let height: Int
        public init(width: Int, height: Int) { self.width = width; self.height = height }
        public var description: String { "\(width)x\(height)" }
    }

    case sizeMismatch(first: Size, second: Size)
    case emptyImage(width: Int, height: Int)
    /// skimage's rule: an odd side of at least 3 (the sample covariance divides by W²-1 > 0),
    /// no larger than the image's smaller side.
    case invalidWindow(windowSize: Int, width: Int, height: Int)

    public var description: String {
        switch self {
        case let .sizeMismatch(first, second):
            return "the images differ in size (\(first) vs \(second)); metrics compare pixel by pixel"
        case let .emptyImage(width, height):
            return "the images are empty (\(width)x\(height))"
        case let .invalidWindow(windowSize, width, height):
            return "SSIM window \(windowSize) does not fit \(width)x\(height) images: it must be odd, "
                + "at least 3 and at most the smaller side (\(min(width, height)))"
        }
    }

    public var errorDescription: String? { description }
}
