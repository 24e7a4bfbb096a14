import Foundation

/// A list of prompts, prompt i for image `<i>.png`: a COCO captions `.json` (MixDQ's list, see
/// `COCOCaptions`) or a text file with one prompt per line (e.g. the synthetic domain's held-out
/// captions). fp-infer, infer, calib-data and eval all read prompts through this.
public enum PromptFile {
    public static func load(_ url: URL) throws -> [String] {
        if url.pathExtension.lowercased() == "json" { return try COCOCaptions.load(url) }
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw COCOCaptionsError(path: url.path, message: "cannot read the prompts (\(FileErrorText.reason(error)))")
        }
        // "\r\n" is one Character in Swift, so it is a separator of its own.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        while lines.last?.isEmpty == true { lines.removeLast() }
        // A blank line would shift every later prompt onto the wrong image.
        if let blank = lines.firstIndex(where: \.isEmpty) {
            throw COCOCaptionsError(path: url.path, message: "line \(blank + 1) is empty (one prompt per line, line i + 1 for image i)")
        }
        guard !lines.isEmpty else { throw COCOCaptionsError(path: url.path, message: "holds no captions") }
        return lines
    }
}
