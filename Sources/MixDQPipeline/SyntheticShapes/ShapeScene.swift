/// What a synthetic-shapes caption says: one or more objects on a plain background.
public struct ShapeScene: Equatable, Sendable {
    public struct Object: Equatable, Sendable {
        public var size: ShapeSize
        public var colour: PaletteColour
        public var shape: ShapeKind
        public var cell: GridCell

        public init(size: ShapeSize, colour: PaletteColour, shape: ShapeKind, cell: GridCell) {
            self.size = size; self.colour = colour; self.shape = shape; self.cell = cell
        }
    }

    public var objects: [Object]
    public var background: PaletteColour

    public init(objects: [Object], background: PaletteColour) {
        self.objects = objects
        self.background = background
    }

    /// The caption grammar of the contract: `a {size} {colour} {shape} {position}`, objects joined
    /// by ` and `, then `, {background} background`.
    public var caption: String {
        objects.map { "a \($0.size.rawValue) \($0.colour.rawValue) \($0.shape.rawValue) \($0.cell.phrase)" }
            .joined(separator: " and ") + ", \(background.rawValue) background"
    }
}
