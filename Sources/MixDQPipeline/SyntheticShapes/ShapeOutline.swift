import Foundation

/// One shape placed on the canvas, rasterised exactly as the data-set renderer
/// (scripts/train/synthetic_shapes.py) draws it: a pixel (x, y) belongs to the shape when its
/// sample point (x, y) lies inside (y down, hard edges). Around centre (cx, cy) with nominal radius
/// r: circle = disc of radius 0.92 r; square = half side 0.86 r; triangle = vertices at radius r,
/// angles -90°, 30°, 150°; star = 10 vertices alternating r and 0.45 r, the first at -90°.
struct ShapeOutline {
    let shape: ShapeKind
    let centreX: Double
    let centreY: Double
    let radius: Double
    /// Polygon vertices (triangle, star); empty for circle and square.
    private let vertices: [(x: Double, y: Double)]

    init(_ shape: ShapeKind, centreX: Double, centreY: Double, radius: Double) {
        self.shape = shape
        self.centreX = centreX
        self.centreY = centreY
        self.radius = radius
        switch shape {
        case .circle, .square: vertices = []
        case .triangle: vertices = Self.ring(centreX, centreY, radii: [radius, radius, radius])
        case .star: vertices = Self.ring(centreX, centreY, radii: (0..<10).map { $0 % 2 == 0 ? radius : 0.45 * radius })
        }
    }

    /// Pixels that can be inside: every shape lies within `radius` of its centre on each axis.
    var columns: ClosedRange<Int> { Int((centreX - radius).rounded(.down))...Int((centreX + radius).rounded(.up)) }
    var rows: ClosedRange<Int> { Int((centreY - radius).rounded(.down))...Int((centreY + radius).rounded(.up)) }

    func contains(x: Double, y: Double) -> Bool {
        switch shape {
        case .circle:
            let (dx, dy) = (x - centreX, y - centreY)
            return dx * dx + dy * dy <= (0.92 * radius) * (0.92 * radius)
        case .square:
            let half = 0.86 * radius
            return abs(x - centreX) <= half && abs(y - centreY) <= half
        case .triangle, .star:
            return polygonContains(x: x, y: y)
        }
    }

    /// Vertices at equal angular steps from -90° (straight up, y down), one per radius.
    private static func ring(_ cx: Double, _ cy: Double, radii: [Double]) -> [(x: Double, y: Double)] {
        let step = 360.0 / Double(radii.count)
        return radii.enumerated().map { i, r in
            let radians = (-90.0 + Double(i) * step) * Double.pi / 180
            return (cx + r * cos(radians), cy + r * sin(radians))
        }
    }

    /// Even-odd rule, with the renderer's expressions (so edge pixels agree with its images).
    private func polygonContains(x: Double, y: Double) -> Bool {
        var inside = false
        for i in vertices.indices {
            let (x1, y1) = vertices[i]
            let (x2, y2) = vertices[(i + 1) % vertices.count]
            if y1 == y2 { continue }
            let crosses = (y1 > y) != (y2 > y)
            let xAt = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if crosses && x < xAt { inside.toggle() }
        }
        return inside
    }
}
