import CGLPK
import Foundation

/// A 0-1 programme where each item takes exactly one of its options: binary `c[i][j]`,
/// `Σ_j c[i][j] = 1` for every item, linear side constraints on the chosen options, and
/// `Σ value[i][j]·c[i][j]` maximised. Bit allocation is one: items are layers, options bit widths.
///
/// Solved exactly by GLPK's simplex and branch-and-cut (`glp_simplex`, `glp_intopt`, relative gap 0);
/// GLPK stands in for the original's OR-Tools/SCIP.
public struct MultipleChoiceProgram {
    /// A side constraint `lower ≤ Σ coefficient[i][j]·c[i][j] ≤ upper` (a nil bound is absent).
    public struct Constraint {
        public var coefficients: [[Double]]
        public var lower: Double?
        public var upper: Double?
        public init(coefficients: [[Double]], lower: Double?, upper: Double?) {
            self.coefficients = coefficients; self.lower = lower; self.upper = upper
        }
    }

    public struct Solution: Equatable {
        /// The chosen option of every item.
        public var choices: [Int]
        /// The optimum as GLPK reports it (`glp_mip_obj_val`).
        public var objective: Double
    }

    public enum Failure: Error, Equatable {
        /// No choice of options satisfies the side constraints.
        case infeasible
        /// GLPK stopped without proving optimality (its return code / status).
        case solverFailed(String)
        /// `timeLimit` seconds passed before GLPK proved an optimum (no answer is returned: a
        /// non-proven incumbent would be a silently suboptimal allocation).
        case timeLimitReached(seconds: Double)
    }

    /// `values[i][j]`: the value of option j of item i; every row non-empty.
    public var values: [[Double]]
    public var constraints: [Constraint]
    /// Seconds GLPK may search before giving up with `timeLimitReached`; nil: no limit.
    public var timeLimit: Double?

    public init(values: [[Double]], constraints: [Constraint], timeLimit: Double? = nil) {
        self.values = values; self.constraints = constraints; self.timeLimit = timeLimit
    }

    public func solve() throws -> Solution {
        // Callers validate shapes; a mismatch here is a programming error, reported, not trapped.
        guard !values.isEmpty, values.allSatisfy({ !$0.isEmpty }) else { throw Failure.solverFailed("empty programme") }
        for c in constraints where c.coefficients.count != values.count
            || zip(c.coefficients, values).contains(where: { $0.0.count != $0.1.count }) {
            throw Failure.solverFailed("constraint shape does not match the options")
        }
        let allFinite = (values + constraints.flatMap(\.coefficients)).allSatisfy { $0.allSatisfy(\.isFinite) }
        guard allFinite else { throw Failure.solverFailed("non-finite coefficient") }

        _ = glp_term_out(GLP_OFF)
        guard let problem = glp_create_prob() else { throw Failure.solverFailed("glp_create_prob failed") }
        defer { glp_delete_prob(problem) }
        glp_set_obj_dir(problem, GLP_MAX)

        // Columns: one binary per (item, option), numbered from 1 as GLPK wants.
        var column: [[Int32]] = []
        var next: Int32 = 1
        for row in values {
            column.append((0..<row.count).map { _ in defer { next += 1 }; return next })
        }
        let columnCount = next - 1
        _ = glp_add_cols(problem, columnCount)
        for (i, row) in values.enumerated() {
            for (j, v) in row.enumerated() {
                glp_set_col_kind(problem, column[i][j], GLP_BV)
                glp_set_obj_coef(problem, column[i][j], v)
            }
        }

        // Rows: one-of per item, then the side constraints. Triplets are 1-based (index 0 unused).
        var ia: [Int32] = [0], ja: [Int32] = [0], ar: [Double] = [0]
        let rowCount = Int32(values.count + constraints.count)
        _ = glp_add_rows(problem, rowCount)
        var rowIndex: Int32 = 1
        for (i, row) in values.enumerated() {
            glp_set_row_bnds(problem, rowIndex, GLP_FX, 1, 1)
            for j in row.indices { ia.append(rowIndex); ja.append(column[i][j]); ar.append(1) }
            rowIndex += 1
        }
        for c in constraints {
            switch (c.lower, c.upper) {
            case let (lo?, hi?) where lo == hi: glp_set_row_bnds(problem, rowIndex, GLP_FX, lo, hi)
            case let (lo?, hi?) where lo > hi: throw Failure.infeasible
            case let (lo?, hi?): glp_set_row_bnds(problem, rowIndex, GLP_DB, lo, hi)
            case let (lo?, nil): glp_set_row_bnds(problem, rowIndex, GLP_LO, lo, 0)
            case let (nil, hi?): glp_set_row_bnds(problem, rowIndex, GLP_UP, 0, hi)
            case (nil, nil): glp_set_row_bnds(problem, rowIndex, GLP_FR, 0, 0)
            }
            for (i, row) in c.coefficients.enumerated() {
                for (j, a) in row.enumerated() where a != 0 { ia.append(rowIndex); ja.append(column[i][j]); ar.append(a) }
            }
            rowIndex += 1
        }
        // Symmetry breaking: item a before item b when both have the same coefficients in every
        // side constraint and a gains at least as much as b from every move to a higher option.
        let order = Self.dominanceOrder(values: values, constraints: constraints)
        if !order.isEmpty {
            _ = glp_add_rows(problem, Int32(order.count))
            for (a, b) in order {
                // Σ_j j·c[a][j] - Σ_j j·c[b][j] ≥ 0: a's option index is at least b's.
                glp_set_row_bnds(problem, rowIndex, GLP_LO, 0, 0)
                for j in values[a].indices where j > 0 {
                    ia.append(rowIndex); ja.append(column[a][j]); ar.append(Double(j))
                    ia.append(rowIndex); ja.append(column[b][j]); ar.append(-Double(j))
                }
                rowIndex += 1
            }
        }
        glp_load_matrix(problem, Int32(ia.count - 1), ia, ja, ar)

        // The LP relaxation first, without GLPK's presolver: with every column fixed by the rows
        // (a target only all-highest bits meet, say), GLPK 5.0's MIP presolver can reduce the
        // problem to no columns and then abort the process in glp_add_cols (ncs = 0).
        var lp = glp_smcp()
        glp_init_smcp(&lp)
        lp.msg_lev = GLP_MSG_OFF
        lp.presolve = GLP_OFF
        switch glp_simplex(problem, &lp) {
        case 0: break
        case GLP_ENOPFS: throw Failure.infeasible
        case let code: throw Failure.solverFailed("glp_simplex returned \(Self.describe(code))")
        }
        switch glp_get_status(problem) {
        case GLP_OPT: break
        case GLP_NOFEAS, GLP_INFEAS: throw Failure.infeasible
        case let status: throw Failure.solverFailed("the LP relaxation's status is \(status), not optimal")
        }

        var parameters = glp_iocp()
        glp_init_iocp(&parameters)
        parameters.msg_lev = GLP_MSG_OFF
        parameters.presolve = GLP_OFF
        parameters.mip_gap = 0         // exact: stop only at a proven optimum
        // GLPK prunes a node whose bound beats the incumbent by less than tol_obj (default 1e-7
        // relative) and takes |x - round(x)| < tol_int (1e-5) as integral, then rounds, which can
        // move the mean past its bound. Tighter values keep the optimum and the constraint exact.
        parameters.tol_obj = 1e-10
        parameters.tol_int = 1e-9
        // The ratio row makes this a knapsack with a two-sided capacity; with many layers of equal
        // ratio (SDXL: 391 of 794 weight layers share one) the default depth-first search proves
        // optimality only after millions of nodes. Gomory, MIR, cover and clique cuts tighten the
        // LP bound at the root, and pseudocost branching with best-bound backtracking closes the
        // remaining gap: a quality-group point measured at > 40 s now takes ~2.5 s (README).
        // These change only the search order and the bound, not the optimum: mip_gap stays 0.
        parameters.gmi_cuts = GLP_ON
        parameters.mir_cuts = GLP_ON
        parameters.cov_cuts = GLP_ON
        parameters.clq_cuts = GLP_ON
        parameters.br_tech = GLP_BR_PCH
        parameters.bt_tech = GLP_BT_BLB
        if let limit = timeLimit {
            guard limit.isFinite, limit > 0 else { throw Failure.solverFailed("time limit \(limit) s is not a positive number") }
            parameters.tm_lim = Int32(min(limit * 1000, Double(Int32.max)).rounded(.up))
        }
        let code = glp_intopt(problem, &parameters)
        switch code {
        case 0: break
        case GLP_ENOPFS: throw Failure.infeasible   // the LP relaxation already has no feasible point
        case GLP_ETMLIM: throw Failure.timeLimitReached(seconds: timeLimit ?? 0)
        default: throw Failure.solverFailed("glp_intopt returned \(Self.describe(code))")
        }
        switch glp_mip_status(problem) {
        case GLP_OPT: break
        case GLP_NOFEAS: throw Failure.infeasible
        case let status: throw Failure.solverFailed("glp_mip_status is \(status), not optimal")
        }

        var choices: [Int] = []
        for (i, row) in values.enumerated() {
            // Binary columns come back as 0/1 up to GLPK's integrality tolerance.
            let picked = row.indices.filter { glp_mip_col_val(problem, column[i][$0]) > 0.5 }
            guard picked.count == 1 else { throw Failure.solverFailed("item \(i) has \(picked.count) options chosen") }
            choices.append(picked[0])
        }
        return Solution(choices: choices, objective: glp_mip_obj_val(problem))
    }

    /// Pairs (a, b) for which "a's option index ≥ b's" can be required without losing the optimum.
    ///
    /// Items a and b with identical coefficients in every side constraint can swap options and stay
    /// feasible; if a gains at least as much as b from every move to a higher option
    /// (v_a[k] - v_a[j] ≥ v_b[k] - v_b[j] for all j < k), the swap that gives a the higher option never
    /// lowers the objective. Ordering each class by a fixed linear extension and requiring a ≥ b for
    /// dominating pairs is jointly valid: from any optimum, swapping a violated pair strictly raises
    /// Σ_i option(i)·(n - position(i)) and keeps the value, so the swaps end at an optimum meeting
    /// every constraint. Without these rows, layers of one shape (SDXL: hundreds of transformer
    /// linears share a ratio) give GLPK countless equal-valued subtrees to prove.
    static func dominanceOrder(values: [[Double]], constraints: [Constraint]) -> [(Int, Int)] {
        // Classes: items whose option count and constraint coefficients are all equal.
        var classes: [[Double]: [Int]] = [:]
        for i in values.indices {
            var key = [Double(values[i].count)]
            for c in constraints { key += c.coefficients[i] }
            classes[key, default: []].append(i)
        }
        func dominates(_ a: Int, _ b: Int) -> Bool {
            let n = values[a].count
            for j in 0..<n {
                for k in (j + 1)..<n where values[a][k] - values[a][j] < values[b][k] - values[b][j] { return false }
            }
            return true
        }
        var pairs: [(Int, Int)] = []
        for members in classes.values where members.count > 1 {
            // The linear extension: total gain from the lowest to the highest option, descending.
            let sorted = members.sorted {
                let ga = values[$0][values[$0].count - 1] - values[$0][0], gb = values[$1][values[$1].count - 1] - values[$1][0]
                return ga != gb ? ga > gb : $0 < $1
            }
            // Each item is tied to the first later item it dominates (a subset of the valid pairs).
            for (t, a) in sorted.enumerated() {
                if let b = sorted[(t + 1)...].first(where: { dominates(a, $0) }) { pairs.append((a, b)) }
            }
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
    }

    private static func describe(_ code: Int32) -> String {
        let names: [Int32: String] = [GLP_EBOUND: "GLP_EBOUND", GLP_EROOT: "GLP_EROOT", GLP_ENODFS: "GLP_ENODFS",
                                      GLP_EFAIL: "GLP_EFAIL", GLP_EMIPGAP: "GLP_EMIPGAP", GLP_ETMLIM: "GLP_ETMLIM",
                                      GLP_ESTOP: "GLP_ESTOP"]
        return names[code] ?? "code \(code)"
    }
}
