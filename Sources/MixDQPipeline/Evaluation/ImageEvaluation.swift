import Foundation
import MixDQIO

/// `mixdq eval`: scores every `*.png` of a folder against the same file name in a reference folder
/// (SSIM at each window that fits, PSNR) and/or against its caption (the synthetic-shapes pixel
/// checker; image `<i>.png` gets caption i, as fp-infer numbers its images).
public struct ImageEvaluation {
    public let images: URL
    public let reference: URL?
    public let captions: URL?
    public let ssimWindows: [Int]

    /// The windows the original and the standard use: 7 (skimage's default) and MixDQ's 511.
    public static let defaultSSIMWindows = [7, 511]

    public init(images: URL, reference: URL?, captions: URL?, ssimWindows: [Int] = defaultSSIMWindows) {
        self.images = images
        self.reference = reference
        self.captions = captions
        self.ssimWindows = ssimWindows
    }

    /// One image's scores.
    public struct Row: Sendable {
        public let name: String
        public let width: Int
        public let height: Int
        /// SSIM per requested window; a window larger than the image is absent (n/a).
        public var ssim: [Int: Double] = [:]
        public var psnr: Double?
        public var caption: String?
        public var check: CaptionCheck?
    }

    public func run() throws -> EvaluationReport {
        let names = try Self.imageNames(in: images)
        var scenes: [ShapeScene] = []
        var captionTexts: [String] = []
        if let captions {
            captionTexts = try CaptionList.load(captions)
            scenes = try CaptionList.scenes(captionTexts, path: captions.path)
        }
        var rows: [Row] = []
        for name in names {
            let url = images.appendingPathComponent(name)
            let image = try RGBImage.readPNG(url)
            var row = Row(name: name, width: image.width, height: image.height)
            if let reference {
                try score(&row, image, against: reference.appendingPathComponent(name), imageURL: url)
            }
            if let captions {
                guard let index = Self.imageIndex(name) else {
                    throw EvaluationInputError(path: url.path, message: "captions are matched by image number, so images must be named <i>.png (as fp-infer writes them)")
                }
                guard index < scenes.count else {
                    throw EvaluationInputError(path: captions.path, message: "holds \(scenes.count) captions; there is none for image \(url.path)")
                }
                row.caption = captionTexts[index]
                do {
                    row.check = try CaptionChecker.check(image, against: scenes[index])
                } catch let error as CaptionCheckerError {
                    throw EvaluationInputError(path: url.path, message: error.description)
                }
            }
            rows.append(row)
        }
        return EvaluationReport(rows: rows, ssimWindows: ssimWindows, hasReference: reference != nil, hasCaptions: captions != nil)
    }

    private func score(_ row: inout Row, _ image: RGBImage, against referenceURL: URL, imageURL: URL) throws {
        guard FileManager.default.fileExists(atPath: referenceURL.path) else {
            throw EvaluationInputError(path: referenceURL.path, message: "no reference image for \(imageURL.path)")
        }
        let referenceImage = try RGBImage.readPNG(referenceURL)
        do {
            for window in ssimWindows where window <= min(image.width, image.height) {
                row.ssim[window] = try ImageMetrics.ssim(image, referenceImage, windowSize: window)
            }
            row.psnr = try ImageMetrics.psnr(image, referenceImage)
        } catch let error as ImageMetricsError {
            throw EvaluationInputError(path: imageURL.path, message: "against \(referenceURL.path): \(error.description)")
        }
    }

    /// The folder's `*.png` files (hidden ones skipped): `<i>.png` in number order, then any others
    /// by name.
    static func imageNames(in folder: URL) throws -> [String] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        } catch {
            throw EvaluationInputError(path: folder.path, message: "cannot list the image folder (\(FileErrorText.reason(error)))")
        }
        let pngs = entries.filter { !$0.hasPrefix(".") && ($0 as NSString).pathExtension.lowercased() == "png" }
        guard !pngs.isEmpty else { throw EvaluationInputError(path: folder.path, message: "holds no .png images") }
        return pngs.sorted { a, b in
            switch (imageIndex(a), imageIndex(b)) {
            case let (i?, j?): return i < j
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a < b
            }
        }
    }

    /// i for a file named `<i>.png` (decimal digits only), else nil.
    static func imageIndex(_ name: String) -> Int? {
        guard name.hasSuffix(".png") else { return nil }
        let stem = name.dropLast(4)
        guard !stem.isEmpty, stem.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(stem)
    }
}
