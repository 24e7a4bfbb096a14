import Foundation

/// The original's integer programme for one layer group (mixdq-method.md §6.5): one bit width per
/// layer from `bits`, the ratio-weighted mean bit width within `target ± tolerance`, the summed
/// sensitivity scores at the chosen widths maximised; optionally also a budget on the packed
/// weight bytes. Solved exactly (GLPK, `MultipleChoiceProgram`).
public struct BitAllocationRequest {
    public var scores: SensitivityScores
    public var ratios: LayerRatios
    public var bits: [Int]
    public var target: Double
    public var tolerance: Double
    public var group: LayerGroup
    /// Layers left out of the programme and its budget (the act-protect list), and the file they came from.
    public var excluded: [String]
    public var excludedSource: String
    /// Packed weight bytes of the group's layers at most this many (2/4/8-bit codes: 1/4, 1/2, 1 byte per
    /// parameter); needs `parameters`.
    public var maxBytes: Double?
    public var parameters: LayerRatios?
    /// Seconds GLPK may spend proving the optimum; when they run out the request fails (never a
    /// non-proven answer). nil: no limit.
    public var timeLimit: Double?

    public init(scores: SensitivityScores, ratios: LayerRatios, bits: [Int], target: Double, tolerance: Double = 0.02,
                group: LayerGroup, excluded: [String] = [], excludedSource: String = "the exclude list",
                maxBytes: Double? = nil, parameters: LayerRatios? = nil, timeLimit: Double? = nil) {
        self.scores = scores; self.ratios = ratios; self.bits = bits; self.target = target; self.tolerance = tolerance
        self.group = group; self.excluded = excluded; self.excludedSource = excludedSource
        self.maxBytes = maxBytes; self.parameters = parameters; self.timeLimit = timeLimit
    }
}

public struct BitAllocation: Equatable {
    /// The group's layers in model order, and the bit width chosen for each.
    public var layers: [String]
    public var bits: [String: Int]
    /// Σ score(layer, bits) as GLPK reports it at the optimum.
    public var objective: Double
    /// The same sum recomputed from the chosen widths.
    public var score: Double
    /// Σ ratio·bits / Σ ratio over the group.
    public var mean: Double
    /// Packed weight bytes of the group (when parameter counts were given).
    public var packedBytes: Double?

    /// Slack on the mean check: GLPK's row feasibility tolerance, well below any printed digit.
    public static let meanSlack = 1e-9

    /// `model.<path>: bits`, one line per layer in model order (the original's bit-config format).
    public func yamlString() -> String { Self.yaml(layers: layers, bits: bits) }

    static func yaml(layers: [String], bits: [String: Int]) -> String {
        layers.map { "model.\($0): \(bits[$0] ?? 0)" }.joined(separator: "\n") + "\n"
    }

    /// Packed bytes per parameter of a weight stored at `bits` (QuantizedUNetFormat.restBits).
    public static func bytesPerParameter(bits: Int) -> Double? {
        QuantizedUNetFormat.restBits(forWeightBits: bits).map { Double($0) / 8 }
    }

    public static func solve(_ request: BitAllocationRequest) throws -> BitAllocation {
        let r = request
        let bitList = r.bits.map(String.init).joined(separator: ",")
        guard !r.bits.isEmpty else { throw SearchInputError("--bits: give at least one bit width") }
        guard Set(r.bits).count == r.bits.count else { throw SearchInputError("--bits \(bitList): a bit width is given twice") }
        if let bad = r.bits.first(where: { !(1...16).contains($0) }) {
            throw SearchInputError("--bits \(bitList): \(bad) is not a bit width between 1 and 16")
        }
        guard r.target.isFinite, r.target > 0 else { throw SearchInputError("--target \(r.target): must be a positive number") }
        guard r.tolerance.isFinite, r.tolerance >= 0 else { throw SearchInputError("--tolerance \(r.tolerance): must be a non-negative number") }
        if let limit = r.timeLimit, !(limit.isFinite && limit > 0) { throw SearchInputError("--time-limit \(limit): must be a positive number of seconds") }
        let columns = try r.bits.map { try r.scores.column(of: $0) }

        // The group: its layers in the ratio file (the model's layer list), less the excluded ones.
        let known = Set(r.ratios.layers)
        let unknownExcluded = r.excluded.filter { !known.contains($0) }
        if !unknownExcluded.isEmpty {
            throw SearchInputError("\(r.excludedSource): \(unknownExcluded.count) unknown layer(s), not in the ratio file \(r.ratios.source): \(SearchInputError.list(unknownExcluded))")
        }
        let excluded = Set(r.excluded)
        let uncovered = r.scores.layers.filter { r.group.contains($0) && !known.contains($0) }
        if !uncovered.isEmpty {
            throw SearchInputError("\(r.ratios.source): no ratio for \(uncovered.count) layer(s) of the \(r.group.rawValue) group scored in \(r.scores.source) "
                + "(unknown layers, or a ratio file that does not cover the group): \(SearchInputError.list(uncovered))")
        }
        let layers = r.ratios.layers.filter { r.group.contains($0) && !excluded.contains($0) }
        guard !layers.isEmpty else {
            throw SearchInputError("\(r.ratios.source): no layer of the \(r.group.rawValue) group\(excluded.isEmpty ? "" : " outside \(r.excludedSource)")")
        }
        let unscored = layers.filter { r.scores.scores[$0] == nil }
        if !unscored.isEmpty {
            throw SearchInputError("\(r.scores.source): no scores for \(unscored.count) of the \(layers.count) layer(s) of the \(r.group.rawValue) group: \(SearchInputError.list(unscored))")
        }

        let lowest = Double(r.bits.min() ?? 0), highest = Double(r.bits.max() ?? 0)
        guard r.target + r.tolerance >= lowest, r.target - r.tolerance <= highest else {
            throw SearchInputError("--target \(fmt(r.target)) ±\(fmt(r.tolerance)) is out of the achievable range: a mean of bits \(bitList) lies in [\(fmt(lowest)), \(fmt(highest))]")
        }

        let total = layers.reduce(0.0) { $0 + (r.ratios.ratio[$1] ?? 0) }
        let weight = layers.map { (r.ratios.ratio[$0] ?? 0) / total }
        let values = layers.map { path in columns.map { r.scores.scores[path]?[$0] ?? 0 } }
        var constraints = [MultipleChoiceProgram.Constraint(
            coefficients: weight.map { w in r.bits.map { Double($0) * w } },
            lower: r.target - r.tolerance, upper: r.target + r.tolerance)]

        var byteCost: [[Double]]? = nil
        if let maxBytes = r.maxBytes {
            guard maxBytes.isFinite, maxBytes > 0 else { throw SearchInputError("--max-bytes \(maxBytes): must be a positive number") }
            guard let params = r.parameters else { throw SearchInputError("--max-bytes needs the layers' parameter counts (--params)") }
            let perParam = try r.bits.map { b -> Double in
                guard let v = bytesPerParameter(bits: b) else {
                    throw SearchInputError("--max-bytes: \(b)-bit weights have no packed size (packed widths are 2, 4 and 8 bits; --bits \(bitList))")
                }
                return v
            }
            let missing = layers.filter { params.ratio[$0] == nil }
            if !missing.isEmpty {
                throw SearchInputError("\(params.source): no parameter count for \(missing.count) layer(s) of the \(r.group.rawValue) group: \(SearchInputError.list(missing))")
            }
            let cost = layers.map { p in perParam.map { $0 * (params.ratio[p] ?? 0) } }
            let least = cost.reduce(0.0) { $0 + ($1.min() ?? 0) }
            guard least <= maxBytes else {
                throw SearchInputError("--max-bytes \(fmt(maxBytes)): the \(layers.count) layer(s) of the \(r.group.rawValue) group need at least \(fmt(least)) packed bytes (every layer at \(r.bits.min() ?? 0) bits)")
            }
            byteCost = cost
            // Scaled to a budget of 1 so GLPK's tolerances act on a sane magnitude.
            constraints.append(MultipleChoiceProgram.Constraint(coefficients: cost.map { row in row.map { $0 / maxBytes } }, lower: nil, upper: 1))
        }

        let solution: MultipleChoiceProgram.Solution
        do {
            solution = try MultipleChoiceProgram(values: values, constraints: constraints, timeLimit: r.timeLimit).solve()
        } catch MultipleChoiceProgram.Failure.infeasible {
            throw InfeasibleAllocation("no assignment of bits \(bitList) to the \(layers.count) layer(s) of the \(r.group.rawValue) group has a ratio-weighted mean within \(fmt(r.target)) ±\(fmt(r.tolerance))"
                + (r.maxBytes.map { " and at most \(fmt($0)) packed bytes" } ?? "") + " (infeasible target; widen --tolerance or move --target)")
        } catch MultipleChoiceProgram.Failure.timeLimitReached(let seconds) {
            throw SearchInputError("GLPK did not prove the optimum of the \(r.group.rawValue) group's programme (target \(fmt(r.target)) ±\(fmt(r.tolerance))) within --time-limit \(fmt(seconds)) s; no allocation written (raise or drop --time-limit)")
        } catch MultipleChoiceProgram.Failure.solverFailed(let why) {
            throw SearchInputError("GLPK could not solve the \(r.group.rawValue) group's programme: \(why)")
        }

        var chosen: [String: Int] = [:]
        var mean = 0.0, score = 0.0, bytes = 0.0
        for (i, path) in layers.enumerated() {
            let j = solution.choices[i]
            chosen[path] = r.bits[j]
            mean += weight[i] * Double(r.bits[j])
            score += values[i][j]
            bytes += byteCost?[i][j] ?? 0
        }
        // Checked here, independently of GLPK's own feasibility test.
        guard abs(mean - r.target) <= r.tolerance + meanSlack else {
            throw SearchInputError("GLPK returned a \(r.group.rawValue) assignment with mean \(mean), outside \(fmt(r.target)) ±\(fmt(r.tolerance))")
        }
        if let maxBytes = r.maxBytes, bytes > maxBytes * (1 + 1e-12) {
            throw SearchInputError("GLPK returned a \(r.group.rawValue) assignment of \(fmt(bytes)) packed bytes, over --max-bytes \(fmt(maxBytes))")
        }
        return BitAllocation(layers: layers, bits: chosen, objective: solution.objective, score: score, mean: mean,
                             packedBytes: byteCost == nil ? nil : bytes)
    }
}

/// A well-formed request whose constraints no assignment meets (the scan skips these).
public struct InfeasibleAllocation: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}

/// Numbers in messages: up to 6 significant digits, no trailing zeros.
func fmt(_ v: Double) -> String { String(format: "%g", v) }
