/// Per-attribute caption accuracy over images: the share of images whose background, or whose
/// objects' colour / position / size / shape (every object right), or everything, is right.
public struct CaptionAccuracy: Equatable, Sendable {
    public enum Attribute: String, CaseIterable, Sendable {
        case all, background, colour, position, size, shape
    }

    public private(set) var images = 0
    public private(set) var right: [Attribute: Int] = [:]

    public init() {}

    public mutating func add(_ check: CaptionCheck) {
        images += 1
        for attribute in Attribute.allCases where Self.verdict(check, attribute) {
            right[attribute, default: 0] += 1
        }
    }

    /// Share of images right on `attribute`; nil before any image.
    public func accuracy(_ attribute: Attribute) -> Double? {
        images == 0 ? nil : Double(right[attribute, default: 0]) / Double(images)
    }

    public static func verdict(_ check: CaptionCheck, _ attribute: Attribute) -> Bool {
        switch attribute {
        case .all: return check.all
        case .background: return check.background
        case .colour: return check.colour
        case .position: return check.position
        case .size: return check.size
        case .shape: return check.shape
        }
    }
}
