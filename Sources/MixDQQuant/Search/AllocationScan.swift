import Foundation

/// The original's (a, k) scan (mixdq-method.md §6.5): for an overall target `a` and a split
/// `k = a_content / a_quality`, group targets `a_quality = a(1+r)/(k·r+1)`, `a_content = k·a_quality`
/// with `r = Σ ratio(content) / Σ ratio(quality)` over the ratio file, so the ratio-weighted overall
/// mean is `a`. Each feasible (a, k) yields the union of both groups' allocations.
public struct AllocationScan {
    public struct GroupTargets: Equatable {
        public var content: Double
        public var quality: Double
    }

    /// r over every layer of the ratio file (excluded ones included, as the original).
    public static func contentToQualityRatio(_ ratios: LayerRatios) throws -> Double {
        var content = 0.0, quality = 0.0
        for p in ratios.layers {
            if LayerGroup.isContent(p) { content += ratios.ratio[p] ?? 0 } else { quality += ratios.ratio[p] ?? 0 }
        }
        guard content > 0, quality > 0 else {
            throw SearchInputError("\(ratios.source): the scan needs layers of both groups (content: path contains attn2 or ff), found \(content > 0 ? "no quality" : "no content") layer")
        }
        return content / quality
    }

    public static func groupTargets(a: Double, k: Double, r: Double) -> GroupTargets {
        let quality = a * (1 + r) / (k * r + 1)
        return GroupTargets(content: k * quality, quality: quality)
    }

    /// `n` evenly spaced values from `lo` to `hi` inclusive (numpy's linspace).
    public static func linspace(_ lo: Double, _ hi: Double, _ n: Int) -> [Double] {
        guard n > 1 else { return n == 1 ? [lo] : [] }
        return (0..<n).map { lo + (hi - lo) * Double($0) / Double(n - 1) }
    }

    public struct Candidate {
        public var a: Double
        public var k: Double
        public var targets: GroupTargets
        public var content: BitAllocation
        public var quality: BitAllocation
        /// Both groups' widths, and the ratio-weighted mean over both.
        public var bits: [String: Int]
        public var layers: [String]
        public var mean: Double
        /// `weight_<a>_<k>.yaml` / `act_<a>_<k>.yaml`, two decimals as the original.
        public func fileName(prefix: String) -> String { String(format: "%@_%.2f_%.2f.yaml", prefix, a, k) }
        public func yamlString() -> String { BitAllocation.yaml(layers: layers, bits: bits) }
    }

    public enum Outcome {
        case solved(Candidate)
        /// A group target outside its bits' range (the original's skip) or an infeasible programme.
        case skipped(a: Double, k: Double, targets: GroupTargets, reason: String)
    }

    /// `content` / `quality`: requests whose group, scores, ratios, bits, tolerance and exclusions are
    /// set; their targets are replaced per grid point.
    public static func run(aValues: [Double], kValues: [Double], content: BitAllocationRequest, quality: BitAllocationRequest,
                           progress: (Outcome) -> Void = { _ in }) throws -> [Outcome] {
        let r = try contentToQualityRatio(content.ratios)
        var outcomes: [Outcome] = []
        for a in aValues {
            for k in kValues {
                let t = groupTargets(a: a, k: k, r: r)
                let outcome = try solveOne(a: a, k: k, targets: t, content: content, quality: quality)
                progress(outcome)
                outcomes.append(outcome)
            }
        }
        return outcomes
    }

    static func solveOne(a: Double, k: Double, targets t: GroupTargets, content: BitAllocationRequest,
                         quality: BitAllocationRequest) throws -> Outcome {
        // The original's range filter, generalised from {2..8}/{4..8} to the groups' own bits.
        for (name, target, bits) in [("content", t.content, content.bits), ("quality", t.quality, quality.bits)] {
            let lo = Double(bits.min() ?? 0), hi = Double(bits.max() ?? 0)
            if target < lo || target > hi {
                return .skipped(a: a, k: k, targets: t, reason: "\(name) target \(String(format: "%.3f", target)) outside \(fmt(lo))...\(fmt(hi))")
            }
        }
        var c = content, q = quality
        c.target = t.content; q.target = t.quality
        let ca: BitAllocation, qa: BitAllocation
        do { ca = try BitAllocation.solve(c) } catch is InfeasibleAllocation {
            return .skipped(a: a, k: k, targets: t, reason: "content infeasible")
        }
        do { qa = try BitAllocation.solve(q) } catch is InfeasibleAllocation {
            return .skipped(a: a, k: k, targets: t, reason: "quality infeasible")
        }
        var bits = ca.bits
        for (p, b) in qa.bits { bits[p] = b }
        let ratios = content.ratios
        let layers = ratios.layers.filter { bits[$0] != nil }
        let total = layers.reduce(0.0) { $0 + (ratios.ratio[$1] ?? 0) }
        let mean = layers.reduce(0.0) { $0 + (ratios.ratio[$1] ?? 0) * Double(bits[$1] ?? 0) } / total
        return .solved(Candidate(a: a, k: k, targets: t, content: ca, quality: qa, bits: bits, layers: layers, mean: mean))
    }
}
