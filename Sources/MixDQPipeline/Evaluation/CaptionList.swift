import Foundation
import MixDQIO

/// The captions of an image folder (read with `PromptFile`, caption i for image `<i>.png`) as
/// synthetic-shapes scenes.
public enum CaptionList {
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
