import Foundation
import MixDQIO

/// The captions of an image folder, caption i for image `<i>.png` (as fp-infer names them): a
/// text file with one caption per line, or a COCO captions `.json` (the list fp-infer's
/// `--captions` takes, in the same order).
public enum CaptionList {
    public static func load(_ url: URL) throws -> [String] {
        if url.pathExtension.lowercased() == "json" { return try COCOCaptions.load(url) }
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw EvaluationInputError(path: url.path, message: "cannot read the captions (\(FileErrorText.reason(error)))")
        }
        // "\r\n" is one Character in Swift, so it is a separator of its own.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        while lines.last?.isEmpty == true { lines.removeLast() }
        // A blank line would shift every later caption onto the wrong image.
        if let blank = lines.firstIndex(where: \.isEmpty) {
            throw EvaluationInputError(path: url.path, message: "line \(blank + 1) is empty (one caption per line, line i + 1 for image i)")
        }
        guard !lines.isEmpty else { throw EvaluationInputError(path: url.path, message: "holds no captions") }
        return lines
    }

    /// Every caption parsed as a synthetic-shapes scene; the first that is not one is an error
    /// naming the file and line.
    public static func scenes(_ captions: [String], path: String) throws -> [ShapeScene] {
        try captions.enumerated().map { index, caption in
            do {
                return try ShapeScene(caption: caption)
            } catch let error as ShapeCaptionError {
                throw EvaluationInputError(path: path, message: "caption \(index) (image \(index).png): \(error.description)")
            }
        }
    }
}
