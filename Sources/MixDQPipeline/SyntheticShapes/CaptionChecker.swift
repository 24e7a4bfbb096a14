import Foundation
import MixDQIO

/// An image the caption checker cannot judge.
public struct CaptionCheckerError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let width: Int
    public let height: Int

    public var description: String {
        "the caption checker reads \(GridCell.canvas)x\(GridCell.canvas) synthetic-shapes images; this one is \(width)x\(height)"
    }
    public var errorDescription: String? { description }
}

/// The deterministic pixel checker of the synthetic-shapes domain (shared/reference/trained-model.md,
/// "Evaluation"): every pixel is mapped to its nearest palette colour; then
/// - background: the majority colour of the 2-px border;
/// - per object, colour: more than 50 % of a disc of radius 0.35 r (nominal r) at the cell centre
///   has the object's colour;
/// - position: the centroid of that colour over the image lies in the object's cell;
/// - shape and size: the best IoU, inside the cell, between the pixels of that colour and the
///   templates (4 shapes x 2 sizes x 25 offsets of -4...4 px in steps of 2, drawn like the
///   renderer) names the shape and the size. The first best template wins a tie; a cell without
///   the object's colour gets no template (both fail).
/// Objects are found by colour (the domain's objects have distinct colours), so a wrong colour
/// also fails position, shape and size, and a wrong cell fails colour, shape and size too.
public enum CaptionChecker {
    static let borderWidth = 2
    static let discFraction = 0.35
    static let templateOffsets = [-4, -2, 0, 2, 4]

    public static func check(_ image: RGBImage, against scene: ShapeScene) throws -> CaptionCheck {
        let side = GridCell.canvas
        guard image.width == side, image.height == side else {
            throw CaptionCheckerError(width: image.width, height: image.height)
        }
        let labels = (0..<(side * side)).map { p in
            PaletteColour.nearest(r: image.pixels[p * 3], g: image.pixels[p * 3 + 1], b: image.pixels[p * 3 + 2])
        }
        let readBackground = borderMajority(labels, side: side)
        return CaptionCheck(background: readBackground == scene.background, readBackground: readBackground,
                            objects: scene.objects.map { check($0, labels: labels, side: side) })
    }

    /// The most frequent colour of the pixels within `borderWidth` of an edge (first in palette
    /// order on a tie).
    static func borderMajority(_ labels: [PaletteColour], side: Int) -> PaletteColour {
        var counts = [PaletteColour: Int]()
        for y in 0..<side {
            for x in 0..<side {
                let onBorder = x < borderWidth || y < borderWidth || x >= side - borderWidth || y >= side - borderWidth
                if onBorder { counts[labels[y * side + x], default: 0] += 1 }
            }
        }
        var best = PaletteColour.allCases[0]
        for colour in PaletteColour.allCases where counts[colour, default: 0] > counts[best, default: 0] {
            best = colour
        }
        return best
    }

    static func check(_ object: ShapeScene.Object, labels: [PaletteColour], side: Int) -> CaptionCheck.ObjectCheck {
        let (cx, cy) = (object.cell.centreX, object.cell.centreY)

        // Colour: the central disc.
        let discRadius = discFraction * object.size.radius
        var discPixels = 0, discMatches = 0
        var sumX = 0, sumY = 0, colourPixels = 0
        for y in 0..<side {
            for x in 0..<side {
                let matches = labels[y * side + x] == object.colour
                let (dx, dy) = (Double(x - cx), Double(y - cy))
                if dx * dx + dy * dy <= discRadius * discRadius {
                    discPixels += 1
                    if matches { discMatches += 1 }
                }
                if matches { sumX += x; sumY += y; colourPixels += 1 }
            }
        }
        let colourShare = Double(discMatches) / Double(discPixels)

        // Position: the colour's centroid.
        var centroid: (x: Double, y: Double)?
        if colourPixels > 0 {
            centroid = (Double(sumX) / Double(colourPixels), Double(sumY) / Double(colourPixels))
        }
        let position = centroid.map { GridCell.containing(x: $0.x, y: $0.y) == object.cell } ?? false

        // Shape and size: templates inside the cell.
        let best = bestTemplate(in: object.cell, colour: object.colour, labels: labels, side: side)
        return CaptionCheck.ObjectCheck(
            colour: colourShare > 0.5, position: position,
            size: best?.size == object.size, shape: best?.shape == object.shape,
            colourShare: colourShare, centroid: centroid, bestTemplate: best)
    }

    static func bestTemplate(in cell: GridCell, colour: PaletteColour, labels: [PaletteColour], side: Int)
        -> (shape: ShapeKind, size: ShapeSize, iou: Double)? {
        let (xs, ys) = (cell.xRange, cell.yRange)
        var mask = [Bool](repeating: false, count: xs.count * ys.count)
        var maskCount = 0
        for y in ys {
            for x in xs where labels[y * side + x] == colour {
                mask[(y - ys.lowerBound) * xs.count + x - xs.lowerBound] = true
                maskCount += 1
            }
        }
        guard maskCount > 0 else { return nil }
        var best: (shape: ShapeKind, size: ShapeSize, iou: Double)?
        for shape in ShapeKind.allCases {
            for size in ShapeSize.allCases {
                for dy in templateOffsets {
                    for dx in templateOffsets {
                        let outline = ShapeOutline(shape, centreX: Double(cell.centreX + dx), centreY: Double(cell.centreY + dy),
                                                   radius: size.radius)
                        // The template clipped to the cell: only its bounding box can contribute.
                        var templateCount = 0, overlap = 0
                        for y in Range(outline.rows).clamped(to: ys) {
                            for x in Range(outline.columns).clamped(to: xs)
                            where outline.contains(x: Double(x), y: Double(y)) {
                                templateCount += 1
                                if mask[(y - ys.lowerBound) * xs.count + x - xs.lowerBound] { overlap += 1 }
                            }
                        }
                        let iou = Double(overlap) / Double(templateCount + maskCount - overlap)
                        if iou > (best?.iou ?? -1) { best = (shape, size, iou) }
                    }
                }
            }
        }
        return best
    }
}
