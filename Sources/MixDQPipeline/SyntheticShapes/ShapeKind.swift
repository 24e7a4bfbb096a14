/// The four shapes of the synthetic-shapes domain.
public enum ShapeKind: String, CaseIterable, Sendable {
    case circle, square, triangle, star
}

/// Small r = 11 px, large r = 19 px.
public enum ShapeSize: String, CaseIterable, Sendable {
    case small, large

    public var radius: Double { self == .small ? 11 : 19 }
}
