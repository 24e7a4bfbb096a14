import Foundation

/// A prompt file (COCO captions or one prompt per line) that cannot be used, naming the file and what is wrong.
public struct COCOCaptionsError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
    public var errorDescription: String? { description }
}

/// Prompts from a COCO captions file (the `captions_val2014.json` format).
///
/// MixDQ takes "the first caption of each image id, in annotation-file order" as its prompt list
/// (calibration data, FP/quantized generation, SSIM sensitivity); this reproduces that list.
public enum COCOCaptions {
    /// The first caption of every image id, ordered by that caption's position in
    /// `annotations`, with surrounding whitespace and newlines trimmed.
    public static func load(_ url: URL) throws -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw COCOCaptionsError(path: url.path, message: "cannot read the file (\(FileErrorText.reason(error)))")
        }
        return try parse(data, path: url.path)
    }

    /// `load` on bytes already in memory; `path` names the source in errors.
    public static func parse(_ data: Data, path: String) throws -> [String] {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw COCOCaptionsError(path: path, message: "not valid JSON (\(FileErrorText.jsonReason(error)))")
        }
        guard let root = json as? [String: Any] else {
            throw COCOCaptionsError(path: path, message: "the top level is not a JSON object")
        }
        guard let annotations = root["annotations"] as? [Any] else {
            throw COCOCaptionsError(path: path, message: "no \"annotations\" array (not a COCO captions file?)")
        }
        var seen = Set<String>()
        var captions: [String] = []
        for (i, item) in annotations.enumerated() {
            guard let annotation = item as? [String: Any] else {
                throw COCOCaptionsError(path: path, message: "annotations[\(i)] is not an object")
            }
            guard let imageID = imageKey(annotation["image_id"]) else {
                throw COCOCaptionsError(path: path, message: "annotations[\(i)] has no integer \"image_id\"")
            }
            guard let caption = annotation["caption"] as? String else {
                throw COCOCaptionsError(path: path, message: "annotations[\(i)] (image_id \(imageID)) has no string \"caption\"")
            }
            if seen.insert(imageID).inserted {
                captions.append(caption.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        return captions
    }

    /// COCO ids are integers; string ids are accepted too (some exported subsets use them).
    private static func imageKey(_ value: Any?) -> String? {
        if let s = value as? String { return s }
        if let i = value as? Int { return String(i) }
        if let d = value as? Double, d.rounded() == d, abs(d) < 9.0e15 { return String(Int64(d)) }
        return nil
    }
}
