import Foundation

/// A caption that is not in the synthetic-shapes grammar, or describes a scene the domain never
/// draws (the checker identifies objects by colour and cell, so those must be distinct).
public struct ShapeCaptionError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let caption: String
    public let problem: String

    public var description: String { "caption \"\(caption)\": \(problem)" }
    public var errorDescription: String? { description }
}

extension ShapeScene {
    /// Parses a caption of the contract's grammar (the inverse of `caption`; surrounding
    /// whitespace ignored, words separated by single spaces as the renderer writes them).
    public init(caption text: String) throws {
        let caption = text.trimmingCharacters(in: .whitespacesAndNewlines)
        func failure(_ problem: String) -> ShapeCaptionError { ShapeCaptionError(caption: caption, problem: problem) }

        let suffix = " background"
        guard let comma = caption.range(of: ", ", options: .backwards), caption.hasSuffix(suffix),
              let background = PaletteColour(rawValue: String(caption[comma.upperBound...].dropLast(suffix.count))),
              background.isBackground else {
            throw failure("expected ', <white|black|gray> background' at the end")
        }
        let body = String(caption[..<comma.lowerBound])
        var objects: [Object] = []
        for part in body.components(separatedBy: " and ") {
            let words = part.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            guard words.count == 5, words[0] == "a",
                  let size = ShapeSize(rawValue: words[1]),
                  let colour = PaletteColour(rawValue: words[2]), colour.isObjectColour,
                  let shape = ShapeKind(rawValue: words[3]),
                  let cell = GridCell.parse(phrase: words[4]) else {
                throw failure("cannot read object \"\(part)\" (expected 'a <small|large> <colour> <circle|square|triangle|star> <position>')")
            }
            objects.append(Object(size: size, colour: colour, shape: shape, cell: cell))
        }
        for (i, object) in objects.enumerated() {
            if object.colour == background {
                throw failure("object \(i + 1) has the background's colour \(background.rawValue)")
            }
            if let j = objects[..<i].firstIndex(where: { $0.colour == object.colour }) {
                throw failure("objects \(j + 1) and \(i + 1) are both \(object.colour.rawValue); the domain's objects have distinct colours")
            }
            if let j = objects[..<i].firstIndex(where: { $0.cell == object.cell }) {
                throw failure("objects \(j + 1) and \(i + 1) are both \(object.cell.phrase); the domain's objects are in distinct cells")
            }
        }
        self.init(objects: objects, background: background)
    }
}
