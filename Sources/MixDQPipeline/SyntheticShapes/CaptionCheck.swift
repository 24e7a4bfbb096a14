/// What the pixel checker read from one image against its caption.
public struct CaptionCheck: Equatable, Sendable {
    /// The verdicts for one object of the caption, with what was read (for reports).
    public struct ObjectCheck: Equatable, Sendable {
        public var colour: Bool
        public var position: Bool
        public var size: Bool
        public var shape: Bool
        /// Share of the central disc that has the object's colour.
        public var colourShare: Double
        /// Centroid of the object's colour over the whole image; nil when the colour is absent.
        public var centroid: (x: Double, y: Double)?
        /// The best-matching template inside the expected cell; nil when that cell holds no pixel
        /// of the object's colour.
        public var bestTemplate: (shape: ShapeKind, size: ShapeSize, iou: Double)?

        public var all: Bool { colour && position && size && shape }

        public static func == (a: ObjectCheck, b: ObjectCheck) -> Bool {
            a.colour == b.colour && a.position == b.position && a.size == b.size && a.shape == b.shape
                && a.colourShare == b.colourShare && a.centroid?.x == b.centroid?.x && a.centroid?.y == b.centroid?.y
                && a.bestTemplate?.shape == b.bestTemplate?.shape && a.bestTemplate?.size == b.bestTemplate?.size
                && a.bestTemplate?.iou == b.bestTemplate?.iou
        }
    }

    public var background: Bool
    /// The border's majority colour.
    public var readBackground: PaletteColour
    public var objects: [ObjectCheck]

    /// Image-level verdicts: an object attribute is right when it is right for every object.
    public var colour: Bool { objects.allSatisfy(\.colour) }
    public var position: Bool { objects.allSatisfy(\.position) }
    public var size: Bool { objects.allSatisfy(\.size) }
    public var shape: Bool { objects.allSatisfy(\.shape) }
    /// Every attribute of every object, and the background.
    public var all: Bool { background && objects.allSatisfy(\.all) }
}
