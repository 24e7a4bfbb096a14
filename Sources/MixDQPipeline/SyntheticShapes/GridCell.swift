/// One cell of the 3x3 placement grid of the 128x128 synthetic-shapes canvas: cell centres at
/// x, y ∈ {26, 64, 102}; a cell's region reaches halfway to its neighbours' centres (boundaries at
/// 45 and 83), so each un-jittered shape lies inside its own cell.
public struct GridCell: Hashable, Sendable, CustomStringConvertible {
    public let column: Int
    public let row: Int

    public init?(column: Int, row: Int) {
        guard (0..<3).contains(column), (0..<3).contains(row) else { return nil }
        self.init(checkedColumn: column, row: row)
    }

    private init(checkedColumn column: Int, row: Int) {
        self.column = column
        self.row = row
    }

    static let canvas = 128
    static let centres = [26, 64, 102]
    static let bounds = [0, 45, 83, canvas]

    public var centreX: Int { Self.centres[column] }
    public var centreY: Int { Self.centres[row] }
    /// Pixel ranges of the cell's region.
    var xRange: Range<Int> { Self.bounds[column]..<Self.bounds[column + 1] }
    var yRange: Range<Int> { Self.bounds[row]..<Self.bounds[row + 1] }

    /// The caption phrase, (column, row) → "at the top left" ... "at the bottom right".
    public var phrase: String { Self.phrases[row * 3 + column] }

    static let phrases = ["at the top left", "at the top", "at the top right",
                          "on the left", "in the center", "on the right",
                          "at the bottom left", "at the bottom", "at the bottom right"]

    static func parse(phrase: String) -> GridCell? {
        guard let index = phrases.firstIndex(of: phrase) else { return nil }
        return GridCell(checkedColumn: index % 3, row: index / 3)
    }

    /// The cell whose region holds the point (x, y), in pixels.
    static func containing(x: Double, y: Double) -> GridCell {
        func index(_ v: Double) -> Int { v < Double(bounds[1]) ? 0 : v < Double(bounds[2]) ? 1 : 2 }
        return GridCell(checkedColumn: index(x), row: index(y))
    }

    public var description: String { "(\(column), \(row))" }
}
