/// The Pareto-optimal candidates of a search (issue 9 item 6): fewer mean bits, fewer model bytes and
/// a higher quality are each better; a candidate is dominated when another is at least as good on all
/// three and better on one. Equal candidates do not dominate each other.
public enum ParetoFront {
    public struct Point: Equatable {
        public var meanBits: Double
        public var bytes: Double
        public var quality: Double
        /// A NaN quality (no measurement) counts as the worst, so the comparisons stay a total order.
        public init(meanBits: Double, bytes: Double, quality: Double) {
            self.meanBits = meanBits; self.bytes = bytes; self.quality = quality.isNaN ? -.infinity : quality
        }
    }

    public static func dominates(_ a: Point, _ b: Point) -> Bool {
        a.meanBits <= b.meanBits && a.bytes <= b.bytes && a.quality >= b.quality
            && (a.meanBits < b.meanBits || a.bytes < b.bytes || a.quality > b.quality)
    }

    /// For every point, nil when it is Pareto-optimal, else the index of an optimal point that dominates it.
    ///
    /// A dominating point comes first in the order (bits ascending, bytes ascending, quality
    /// descending), and whatever dominates a dominated point dominates what that one dominates, so
    /// each point is compared only with the optimal points before it.
    public static func dominators(_ points: [Point]) -> [Int?] {
        let order = points.indices.sorted { i, j in
            let a = points[i], b = points[j]
            if a.meanBits != b.meanBits { return a.meanBits < b.meanBits }
            if a.bytes != b.bytes { return a.bytes < b.bytes }
            if a.quality != b.quality { return a.quality > b.quality }
            return i < j
        }
        var result = [Int?](repeating: nil, count: points.count)
        var front: [Int] = []
        for i in order {
            if let d = front.first(where: { dominates(points[$0], points[i]) }) {
                result[i] = d
            } else {
                front.append(i)
            }
        }
        return result
    }
}
