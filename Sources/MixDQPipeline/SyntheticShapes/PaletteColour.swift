/// The colours of the synthetic-shapes domain (shared/reference/trained-model.md, "The data set: a
/// contract"): eight object colours and three backgrounds, white and black being both. The case
/// order is the checker's tie-break when a pixel is equally near two colours (scripts/train's
/// in-training checker uses the same order: object colours, then gray).
public enum PaletteColour: String, CaseIterable, Sendable {
    case red, green, blue, yellow, purple, orange, white, black, gray

    public var rgb: (r: Int, g: Int, b: Int) {
        switch self {
        case .red: return (220, 30, 30)
        case .green: return (30, 170, 50)
        case .blue: return (30, 70, 230)
        case .yellow: return (245, 225, 30)
        case .purple: return (140, 40, 190)
        case .orange: return (250, 140, 20)
        case .white: return (245, 245, 245)
        case .black: return (15, 15, 15)
        case .gray: return (128, 128, 128)
        }
    }

    public var isBackground: Bool { self == .white || self == .black || self == .gray }
    public var isObjectColour: Bool { self != .gray }

    /// The palette colour nearest to an RGB value (squared Euclidean distance; first in case
    /// order on a tie).
    public static func nearest(r: UInt8, g: UInt8, b: UInt8) -> PaletteColour {
        var best = PaletteColour.red, bestDistance = Int.max
        for colour in allCases {
            let (pr, pg, pb) = colour.rgb
            let (dr, dg, db) = (Int(r) - pr, Int(g) - pg, Int(b) - pb)
            let distance = dr * dr + dg * dg + db * db
            if distance < bestDistance { (best, bestDistance) = (colour, distance) }
        }
        return best
    }
}
