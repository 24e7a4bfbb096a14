import Foundation
import XCTest
import MixDQCompute
import MixDQQuant

/// `BitAllocation` (GLPK MILP) against brute force, its constraint checked here independently, and
/// each class of bad input with its message (mixdq-method.md §6.5; issue 9 item 3).
final class BitAllocationTests: XCTestCase {
    // MARK: Helpers

    struct Instance {
        var layers: [String]
        var ratio: [Double]
        var scores: [[Double]]       // per layer, one per column of `columns`
        var params: [Double]
    }

    static let columns = [2, 4, 8]

    func random(_ rng: inout SplitMix64) -> Double { Double(rng.next() >> 11) / 9_007_199_254_740_992.0 }

    /// Layers named like the model's: even ones content (attn2), odd ones quality (conv).
    func makeInstance(layers n: Int, rng: inout SplitMix64) -> Instance {
        let names = (0..<n).map { $0 % 2 == 0 ? "down_blocks.0.attentions.\($0).transformer_blocks.0.attn2.to_k" : "down_blocks.0.resnets.\($0).conv1" }
        let ratio = (0..<n).map { _ in 0.5 + 100 * random(&rng) }
        // Scores rise with bits, as sensitivities do, but with random gains.
        let scores = (0..<n).map { _ -> [Double] in
            let s2 = 10 + 40 * random(&rng), s4 = s2 + 30 * random(&rng), s8 = s4 + 30 * random(&rng)
            return [s2, s4, s8]
        }
        let params = (0..<n).map { _ in Double(1 + Int(random(&rng) * 5000)) }
        return Instance(layers: names, ratio: ratio, scores: scores, params: params)
    }

    func request(_ inst: Instance, bits: [Int], target: Double, tolerance: Double, group: LayerGroup = .all,
                 maxBytes: Double? = nil) -> BitAllocationRequest {
        let scores = SensitivityScores(columns: Self.columns, scores: Dictionary(uniqueKeysWithValues: zip(inst.layers, inst.scores)),
                                       layers: inst.layers, source: "scores.yaml")
        let ratios = LayerRatios(layers: inst.layers, ratio: Dictionary(uniqueKeysWithValues: zip(inst.layers, inst.ratio)), source: "ratio.yaml")
        let params = LayerRatios(layers: inst.layers, ratio: Dictionary(uniqueKeysWithValues: zip(inst.layers, inst.params)), source: "params.yaml")
        return BitAllocationRequest(scores: scores, ratios: ratios, bits: bits, target: target, tolerance: tolerance, group: group,
                                    maxBytes: maxBytes, parameters: maxBytes == nil ? nil : params)
    }

    /// Every assignment: the best feasible score, and whether any assignment lies so close to a
    /// bound (1e-7) that a solver tolerance could decide it either way.
    func bruteForce(_ inst: Instance, indices: [Int], bits: [Int], target: Double, tolerance: Double,
                    maxBytes: Double?) -> (best: Double?, borderline: Bool) {
        let total = indices.reduce(0.0) { $0 + inst.ratio[$1] }
        var best: Double? = nil, borderline = false
        var choice = [Int](repeating: 0, count: indices.count)
        while true {
            var mean = 0.0, score = 0.0, bytes = 0.0
            for (k, i) in indices.enumerated() {
                let b = bits[choice[k]]
                mean += inst.ratio[i] * Double(b) / total
                score += inst.scores[i][Self.columns.firstIndex(of: b)!]
                bytes += inst.params[i] * Double(b) / 8
            }
            let distance = abs(mean - target) - tolerance
            if abs(distance) < 1e-7 { borderline = true }
            if let maxBytes, abs(bytes - maxBytes) < 1e-7 * maxBytes { borderline = true }
            if distance <= 0 && (maxBytes.map { bytes <= $0 } ?? true) { best = max(best ?? -.infinity, score) }
            var k = 0
            while k < choice.count { choice[k] += 1; if choice[k] < bits.count { break }; choice[k] = 0; k += 1 }
            if k == choice.count { break }
        }
        return (best, borderline)
    }

    /// The checks every solution must pass, computed here from the files' numbers.
    func verify(_ a: BitAllocation, _ inst: Instance, indices: [Int], bits: [Int], target: Double, tolerance: Double,
                maxBytes: Double?, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.layers, indices.map { inst.layers[$0] }, "the output lists exactly the group's layers", file: file, line: line)
        let total = indices.reduce(0.0) { $0 + inst.ratio[$1] }
        var mean = 0.0, score = 0.0, bytes = 0.0
        for i in indices {
            guard let b = a.bits[inst.layers[i]], bits.contains(b) else {
                return XCTFail("\(inst.layers[i]): bits \(String(describing: a.bits[inst.layers[i]])) not among \(bits)", file: file, line: line)
            }
            mean += inst.ratio[i] * Double(b) / total
            score += inst.scores[i][Self.columns.firstIndex(of: b)!]
            bytes += inst.params[i] * Double(b) / 8
        }
        XCTAssertLessThanOrEqual(abs(mean - target), tolerance + 1e-9, "mean \(mean) outside \(target) ± \(tolerance)", file: file, line: line)
        XCTAssertEqual(a.mean, mean, accuracy: 1e-12, file: file, line: line)
        XCTAssertEqual(a.objective, score, accuracy: 1e-9 * max(1, abs(score)), "GLPK's objective is the chosen widths' score sum", file: file, line: line)
        if let maxBytes { XCTAssertLessThanOrEqual(bytes, maxBytes, file: file, line: line) }
    }

    // MARK: Exactness

    /// A random byte budget between every layer at the lowest and every layer at the highest width.
    func byteBudget(_ inst: Instance, indices: [Int], lo: Double, hi: Double, rng: inout SplitMix64) -> Double {
        let least = indices.reduce(0.0) { $0 + inst.params[$1] * lo / 8 }, most = indices.reduce(0.0) { $0 + inst.params[$1] * hi / 8 }
        return (least + (most - least) * random(&rng)).rounded(.up)
    }

    enum TrialOutcome { case solved, infeasible, borderline }

    /// One random trial against brute force: GLPK's optimum equals the best feasible score, or both
    /// find no feasible assignment. Trials with an assignment on a bound's edge are skipped.
    func compareWithBruteForce(_ inst: Instance, indices: [Int], bits: [Int], target: Double, tolerance: Double, group: LayerGroup,
                               maxBytes: Double?, trial: Int) throws -> TrialOutcome {
        let expected = bruteForce(inst, indices: indices, bits: bits, target: target, tolerance: tolerance, maxBytes: maxBytes)
        if expected.borderline { return .borderline }
        let req = request(inst, bits: bits, target: target, tolerance: tolerance, group: group, maxBytes: maxBytes)
        guard let best = expected.best else {
            XCTAssertThrowsError(try BitAllocation.solve(req), "trial \(trial): brute force finds no feasible assignment") {
                XCTAssertTrue($0 is InfeasibleAllocation, "trial \(trial): \($0)")
            }
            return .infeasible
        }
        let a = try BitAllocation.solve(req)
        verify(a, inst, indices: indices, bits: bits, target: target, tolerance: tolerance, maxBytes: maxBytes)
        XCTAssertEqual(a.objective, best, accuracy: 1e-9 * max(1, abs(best)), "trial \(trial): GLPK \(a.objective) vs brute force \(best)")
        return .solved
    }

    func testHandComputedOptimum() throws {
        // Two equal-ratio layers, target 6 ± 0: the only means of 6 are (4, 8) and (8, 4).
        // Layer a gains more from 8 bits (10 -> 30) than b (20 -> 25), so a gets 8 bits.
        let inst = Instance(layers: ["a.attn2.to_q", "b.attn2.to_k"], ratio: [1, 1], scores: [[0, 10, 30], [0, 20, 25]], params: [1, 1])
        let a = try BitAllocation.solve(request(inst, bits: [2, 4, 8], target: 6, tolerance: 0))
        XCTAssertEqual(a.bits, ["a.attn2.to_q": 8, "b.attn2.to_k": 4])
        XCTAssertEqual(a.objective, 50, accuracy: 1e-9)
        XCTAssertEqual(a.mean, 6, accuracy: 1e-12)
    }

    func testEqualsBruteForceOnRandomSmallInstances() throws {
        var rng = SplitMix64(seed: 9_003)
        var solved = 0, infeasible = 0
        for trial in 0..<800 {
            let n = 1 + Int(random(&rng) * 7)
            let inst = makeInstance(layers: n, rng: &rng)
            let bitSets = [[2, 4, 8], [4, 8], [2, 4], [2, 8]]
            let bits = bitSets[trial % bitSets.count]
            let lo = Double(bits.min()!), hi = Double(bits.max()!)
            let target = lo + (hi - lo) * random(&rng)
            let tolerance = [0.0, 0.02, 0.1, 0.5][Int(random(&rng) * 4)]
            let group: LayerGroup = [.all, .content, .quality][trial % 3]
            let indices = inst.layers.indices.filter { group.contains(inst.layers[$0]) }
            if indices.isEmpty { continue }
            // Every fourth trial also has a byte budget.
            let maxBytes = trial % 4 == 3 ? byteBudget(inst, indices: indices, lo: lo, hi: hi, rng: &rng) : nil
            switch try compareWithBruteForce(inst, indices: indices, bits: bits, target: target, tolerance: tolerance, group: group,
                                             maxBytes: maxBytes, trial: trial) {
            case .solved: solved += 1
            case .infeasible: infeasible += 1
            case .borderline: continue
            }
        }
        // Both outcomes must have been exercised, or the test proves little.
        XCTAssertGreaterThan(solved, 150, "solved \(solved), infeasible \(infeasible)")
        XCTAssertGreaterThan(infeasible, 20, "solved \(solved), infeasible \(infeasible)")
    }

    /// Layers of one shape share their ratio (and parameter count): the solver's symmetry-breaking
    /// rows (MultipleChoiceProgram.dominanceOrder) must keep the optimum. Few distinct ratios,
    /// gains often tied exactly, against brute force.
    func testTiedRatiosEqualBruteForce() throws {
        var rng = SplitMix64(seed: 4_242)
        var solved = 0, infeasible = 0
        for trial in 0..<500 {
            let n = 2 + Int(random(&rng) * 7)
            var inst = makeInstance(layers: n, rng: &rng)
            let shapes = [1.0, 2.0, 4.5]
            for i in 0..<n {
                let shape = Int(random(&rng) * Double(1 + trial % 3))
                inst.ratio[i] = shapes[shape]
                inst.params[i] = 1000 * shapes[shape]
                // Every third layer copies an earlier one's scores: equal gains, the tie-break path.
                if i > 0, Int(random(&rng) * 3) == 0 { inst.scores[i] = inst.scores[Int(random(&rng) * Double(i))] }
                // Scores that fall with bits at some option too: dominance is then only partial.
                if trial % 5 == 4 { inst.scores[i][1] -= 25 * random(&rng) }
            }
            let bits = [[2, 4, 8], [4, 8], [2, 8]][trial % 3]
            let lo = Double(bits.min()!), hi = Double(bits.max()!)
            let target = lo + (hi - lo) * random(&rng)
            let tolerance = [0.05, 0.3, 1.0][Int(random(&rng) * 3)]
            let indices = Array(inst.layers.indices)
            let maxBytes = trial % 4 == 3 ? byteBudget(inst, indices: indices, lo: lo, hi: hi, rng: &rng) : nil
            switch try compareWithBruteForce(inst, indices: indices, bits: bits, target: target, tolerance: tolerance, group: .all,
                                             maxBytes: maxBytes, trial: trial) {
            case .solved: solved += 1
            case .infeasible: infeasible += 1
            case .borderline: continue
            }
        }
        XCTAssertGreaterThan(solved, 150, "solved \(solved), infeasible \(infeasible)")
        XCTAssertGreaterThan(infeasible, 10, "solved \(solved), infeasible \(infeasible)")
    }

    /// The embedded random model's weight-quality scores (Fixtures/search/tied_ratios: 206 quality layers,
    /// 21 distinct ratios): the programme at target 4.552 (the (5, 1.2) grid point) ran for minutes
    /// without the symmetry-breaking rows (stopped at 120 s); with them GLPK proves it in under a
    /// second. The limit only turns a regression into a failure instead of a hang.
    func testTiedRatioProgrammeOfTheEmbeddedModelIsProven() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/search/tied_ratios")
        let scores = try SensitivityScores.load(dir.appendingPathComponent("sensitivity_weight_quality.yaml"), columns: Self.columns)
        let ratios = try LayerRatios.load(dir.appendingPathComponent("ratio_weight.yaml"))
        let target = 4.55197, tolerance = 0.02
        let req = BitAllocationRequest(scores: scores, ratios: ratios, bits: [4, 8], target: target, tolerance: tolerance,
                                       group: .quality, timeLimit: 120)
        let a = try BitAllocation.solve(req)
        let layers = ratios.layers.filter { LayerGroup.quality.contains($0) }
        XCTAssertEqual(a.layers, layers)
        let total = layers.reduce(0.0) { $0 + ratios.ratio[$1]! }
        let mean = layers.reduce(0.0) { $0 + ratios.ratio[$1]! * Double(a.bits[$1]!) / total }
        XCTAssertLessThanOrEqual(abs(mean - target), tolerance + 1e-12, "mean \(mean)")
        let score = layers.reduce(0.0) { $0 + scores.scores[$1]![a.bits[$1]! == 4 ? 1 : 2] }
        XCTAssertEqual(score, a.objective, accuracy: 1e-9 * abs(score))
        // No feasible swap of one 4-bit and one 8-bit layer, nor single change, improves the score.
        let at8 = layers.filter { a.bits[$0] == 8 }, at4 = layers.filter { a.bits[$0] == 4 }
        func gain(_ l: String) -> Double { scores.scores[l]![2] - scores.scores[l]![1] }
        for up in at4 {
            let m = mean + ratios.ratio[up]! * 4 / total
            if abs(m - target) <= tolerance { XCTAssertLessThanOrEqual(gain(up), 1e-9, "raising \(up) is feasible and gains") }
            for down in at8 {
                let m2 = m - ratios.ratio[down]! * 4 / total
                if abs(m2 - target) <= tolerance - 1e-12 {
                    XCTAssertLessThanOrEqual(gain(up) - gain(down), 1e-9, "swapping \(up) up and \(down) down is feasible and gains")
                }
            }
        }
        print(String(format: "tied-ratio programme: %d layers, %d at 8 bits, mean %.5f, objective %.6f", layers.count, at8.count, mean, a.objective))
    }

    func testLargeInstancesMeetTheConstraintAtGLPKsOptimum() throws {
        var rng = SplitMix64(seed: 77)
        for (n, target, bits) in [(420, 3.6, [2, 4, 8]), (374, 5.2, [4, 8]), (800, 4.9, [2, 4, 8])] {
            let inst = makeInstance(layers: n, rng: &rng)
            let a = try BitAllocation.solve(request(inst, bits: bits, target: target, tolerance: 0.02))
            verify(a, inst, indices: Array(inst.layers.indices), bits: bits, target: target, tolerance: 0.02, maxBytes: nil)
            // Optimality sanity: no single-layer change that stays feasible improves the score.
            let total = inst.ratio.reduce(0, +)
            for i in inst.layers.indices {
                let cur = a.bits[inst.layers[i]]!
                for b in bits where b != cur {
                    let mean = a.mean + inst.ratio[i] * Double(b - cur) / total
                    guard abs(mean - target) <= 0.02 - 1e-9 else { continue }
                    let gain = inst.scores[i][Self.columns.firstIndex(of: b)!] - inst.scores[i][Self.columns.firstIndex(of: cur)!]
                    XCTAssertLessThanOrEqual(gain, 1e-6, "\(inst.layers[i]): moving to \(b) bits stays feasible and gains \(gain)")
                }
            }
        }
    }

    func testTimeLimitIsAnErrorNeverAnUnprovenAnswer() throws {
        var rng = SplitMix64(seed: 5)
        let inst = makeInstance(layers: 800, rng: &rng)
        var req = request(inst, bits: [2, 4, 8], target: 4.9, tolerance: 0.02)
        let unlimited = try BitAllocation.solve(req)
        // A generous limit changes nothing: the same proven optimum.
        req.timeLimit = 600
        XCTAssertEqual(try BitAllocation.solve(req), unlimited)
        // GLPK checks its clock (ms) in the branch-and-bound loop; 1 ms has passed by then, so it
        // stops before proving anything, and that is an error, not the incumbent.
        req.timeLimit = 0.001
        assertFails(req, mentioning: ["did not prove the optimum", "--time-limit 0.001 s", "all group", "no allocation written"])
        for bad in [0, -1, Double.nan, .infinity] {
            req.timeLimit = bad
            assertFails(req, mentioning: ["--time-limit", "positive number of seconds"])
        }
    }

    func testByteBudgetBinds() throws {
        // Same two layers; with every width allowed (tolerance 6) the best is 8+8 = 55 at 2 bytes
        // (one parameter each). A budget of 1.5 bytes rules that out: 8 + 4 bits for a is best (50).
        let inst = Instance(layers: ["a.attn2.to_q", "b.attn2.to_k"], ratio: [1, 1], scores: [[0, 10, 30], [0, 20, 25]], params: [1, 1])
        XCTAssertEqual(try BitAllocation.solve(request(inst, bits: [2, 4, 8], target: 5, tolerance: 3)).objective, 55, accuracy: 1e-9)
        let a = try BitAllocation.solve(request(inst, bits: [2, 4, 8], target: 5, tolerance: 3, maxBytes: 1.5))
        XCTAssertEqual(a.bits, ["a.attn2.to_q": 8, "b.attn2.to_k": 4])
        XCTAssertEqual(a.packedBytes, 1.5)
    }

    // MARK: Bad input

    func assertFails(_ req: BitAllocationRequest, mentioning parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try BitAllocation.solve(req), file: file, line: line) { error in
            let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            for p in parts { XCTAssertTrue(text.contains(p), "'\(p)' not in: \(text)", file: file, line: line) }
        }
    }

    var twoLayers: Instance {
        Instance(layers: ["a.attn2.to_q", "b.conv1"], ratio: [1, 3], scores: [[0, 10, 30], [0, 20, 25]], params: [1, 1])
    }

    func testInfeasibleTargetIsAClearError() {
        // Bits 4, 8 on one layer: means are 4 or 8 only; 6 ± 0.02 has no assignment.
        var req = request(twoLayers, bits: [4, 8], target: 6, tolerance: 0.02, group: .content)
        XCTAssertThrowsError(try BitAllocation.solve(req)) { XCTAssertTrue($0 is InfeasibleAllocation, "\($0)") }
        assertFails(req, mentioning: ["no assignment of bits 4,8", "1 layer(s) of the content group", "6 ±0.02", "infeasible"])
        req.target = 5
        assertFails(req, mentioning: ["content group"])
    }

    func testTargetOutOfRange() {
        assertFails(request(twoLayers, bits: [4, 8], target: 3, tolerance: 0.02), mentioning: ["--target 3", "out of the achievable range", "[4, 8]"])
        assertFails(request(twoLayers, bits: [2, 4], target: 4.5, tolerance: 0.02), mentioning: ["--target 4.5", "[2, 4]"])
    }

    func testMissingBitColumn() {
        assertFails(request(twoLayers, bits: [3, 8], target: 5, tolerance: 0.02), mentioning: ["scores.yaml", "no score column for 3 bits", "2, 4, 8"])
    }

    func testScoreLayerMissingFromRatioFile() {
        var req = request(twoLayers, bits: [2, 4, 8], target: 5, tolerance: 0.02, group: .content)
        req.scores.scores["x.attn2.to_v"] = [1, 2, 3]
        req.scores.layers.append("x.attn2.to_v")
        assertFails(req, mentioning: ["ratio.yaml", "no ratio for 1 layer(s) of the content group", "scores.yaml", "x.attn2.to_v"])
    }

    func testGroupLayerWithoutScores() {
        var req = request(twoLayers, bits: [2, 4, 8], target: 5, tolerance: 0.02)
        req.scores.scores["b.conv1"] = nil
        req.scores.layers.removeAll { $0 == "b.conv1" }
        assertFails(req, mentioning: ["scores.yaml", "no scores for 1 of the 2 layer(s) of the all group", "b.conv1"])
    }

    func testUnknownExcludedLayer() {
        var req = request(twoLayers, bits: [2, 4, 8], target: 5, tolerance: 0.02)
        req.excluded = ["nope.conv"]
        req.excludedSource = "protect.yaml"
        assertFails(req, mentioning: ["protect.yaml", "1 unknown layer(s)", "ratio.yaml", "nope.conv"])
    }

    func testExcludedLayersLeaveTheProgrammeAndOutput() throws {
        var req = request(twoLayers, bits: [2, 4, 8], target: 8, tolerance: 0)
        req.excluded = ["b.conv1"]
        let a = try BitAllocation.solve(req)
        XCTAssertEqual(a.layers, ["a.attn2.to_q"])
        XCTAssertEqual(a.bits, ["a.attn2.to_q": 8])
        req.excluded = ["a.attn2.to_q", "b.conv1"]
        assertFails(req, mentioning: ["ratio.yaml", "no layer of the all group outside the exclude list"])
    }

    func testByteBudgetErrors() {
        assertFails(request(twoLayers, bits: [2, 4, 8], target: 5, tolerance: 3, maxBytes: 0.25),
                    mentioning: ["--max-bytes 0.25", "need at least 0.5 packed bytes", "2 bits"])
        var req = request(twoLayers, bits: [3, 8], target: 5, tolerance: 3, maxBytes: 10)
        req.scores = SensitivityScores(columns: [3, 8], scores: ["a.attn2.to_q": [1, 2], "b.conv1": [1, 2]], layers: ["a.attn2.to_q", "b.conv1"], source: "s.yaml")
        XCTAssertNoThrow(try BitAllocation.solve(req))   // 3-bit codes rest at 4 bits (QuantizedUNetFormat.restBits)
        req.scores = SensitivityScores(columns: [1, 8], scores: ["a.attn2.to_q": [1, 2], "b.conv1": [1, 2]], layers: ["a.attn2.to_q", "b.conv1"], source: "s.yaml")
        req.bits = [1, 8]
        assertFails(req, mentioning: ["--max-bytes", "1-bit weights have no packed size"])
        req = request(twoLayers, bits: [2, 4, 8], target: 5, tolerance: 3, maxBytes: 10)
        req.parameters?.ratio["b.conv1"] = nil
        assertFails(req, mentioning: ["params.yaml", "no parameter count", "b.conv1"])
    }

    func testBadBitsAndNumbers() {
        assertFails(request(twoLayers, bits: [4, 4], target: 5, tolerance: 0.02), mentioning: ["--bits 4,4", "given twice"])
        assertFails(request(twoLayers, bits: [2, 4, 8], target: .nan, tolerance: 0.02), mentioning: ["--target"])
        assertFails(request(twoLayers, bits: [2, 4, 8], target: 5, tolerance: -1), mentioning: ["--tolerance -1"])
    }

    // MARK: Files

    func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bitalloc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func write(_ text: String, _ name: String, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func assertLoadFails(_ body: () throws -> Void, mentioning parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            let text = "\(error)"
            for p in parts { XCTAssertTrue(text.contains(p), "'\(p)' not in: \(text)", file: file, line: line) }
        }
    }

    func testScoreFileFormat() throws {
        let dir = try tempDir()
        let good = try write("model.a.attn2.to_q: [0.5, 0.9, 0.99]\nb.conv1: [20, 40.5, 80]\n", "s.yaml", in: dir)
        let s = try SensitivityScores.load(good, columns: [2, 4, 8])
        XCTAssertEqual(s.layers, ["a.attn2.to_q", "b.conv1"])
        XCTAssertEqual(s.scores["b.conv1"], [20, 40.5, 80])

        let short = try write("model.a.attn2.to_q: [0.5, 0.9]\n", "short.yaml", in: dir)
        assertLoadFails({ _ = try SensitivityScores.load(short, columns: [2, 4, 8]) },
                        mentioning: ["short.yaml", "line 1", "a.attn2.to_q", "2 score(s), expected 3"])
        let scalar = try write("model.a.attn2.to_q: 0.5\n", "scalar.yaml", in: dir)
        assertLoadFails({ _ = try SensitivityScores.load(scalar, columns: [2, 4, 8]) }, mentioning: ["scalar.yaml", "a.attn2.to_q", "expected a list"])
        let inf = try write("model.a.attn2.to_q: [1, .inf, 2]\n", "inf.yaml", in: dir)
        assertLoadFails({ _ = try SensitivityScores.load(inf, columns: [2, 4, 8]) }, mentioning: ["inf.yaml", "a.attn2.to_q", "finite number"])
        let twice = try write("model.a.attn2.to_q: [1, 2, 3]\na.attn2.to_q: [1, 2, 3]\n", "twice.yaml", in: dir)
        assertLoadFails({ _ = try SensitivityScores.load(twice, columns: [2, 4, 8]) }, mentioning: ["twice.yaml", "line 2", "given twice"])
        let list = try write("- a\n- b\n", "list.yaml", in: dir)
        assertLoadFails({ _ = try SensitivityScores.load(list, columns: [2, 4, 8]) }, mentioning: ["list.yaml", "expected a sensitivity score file"])
        assertLoadFails({ _ = try SensitivityScores.load(dir.appendingPathComponent("absent.yaml"), columns: [2, 4, 8]) },
                        mentioning: ["absent.yaml", "cannot read"])
    }

    func testRatioFileFormat() throws {
        let dir = try tempDir()
        let good = try write("model.conv_in: 1.0\nmodel.b.attn2.to_k: 113.78\n", "r.yaml", in: dir)
        let r = try LayerRatios.load(good)
        XCTAssertEqual(r.layers, ["conv_in", "b.attn2.to_k"])
        XCTAssertEqual(r.ratio["b.attn2.to_k"], 113.78)
        XCTAssertEqual(try LayerRatios.load(try write(r.yamlString(), "again.yaml", in: dir)).ratio, r.ratio, "round trip")
        let zero = try write("model.conv_in: 0\n", "zero.yaml", in: dir)
        assertLoadFails({ _ = try LayerRatios.load(zero) }, mentioning: ["zero.yaml", "line 1", "conv_in", "positive"])
        let text = try write("model.conv_in: big\n", "text.yaml", in: dir)
        assertLoadFails({ _ = try LayerRatios.load(text) }, mentioning: ["text.yaml", "conv_in", "finite number", "big"])
        let empty = try write("{}\n", "empty.yaml", in: dir)
        assertLoadFails({ _ = try LayerRatios.load(empty) }, mentioning: ["empty.yaml", "names no layer"])
    }

    // MARK: Scan

    func testGroupTargetsAverageToTheOverallTarget() {
        // a(1+r)/(kr+1) for quality, k times that for content; ratio-weighted they average to a.
        for (a, k, r) in [(5.0, 0.46, 2.24), (4.7, 1.36, 2.24), (7.7, 1.0, 0.5)] {
            let t = AllocationScan.groupTargets(a: a, k: k, r: r)
            XCTAssertEqual(t.content / t.quality, k, accuracy: 1e-12)
            XCTAssertEqual((t.content * r + t.quality) / (r + 1), a, accuracy: 1e-12)
        }
        XCTAssertEqual(AllocationScan.linspace(0.46, 1.36, 10).first, 0.46)
        XCTAssertEqual(AllocationScan.linspace(0.46, 1.36, 10).last!, 1.36, accuracy: 1e-12)
        XCTAssertEqual(AllocationScan.linspace(0.46, 1.36, 10)[1], 0.56, accuracy: 1e-12)
        XCTAssertEqual(AllocationScan.linspace(3, 3, 1), [3])
    }

    func testScanSolvesBothGroupsOrSkips() throws {
        var rng = SplitMix64(seed: 5)
        let inst = makeInstance(layers: 40, rng: &rng)
        let content = request(inst, bits: [2, 4, 8], target: 0, tolerance: 0.02, group: .content)
        var quality = request(inst, bits: [4, 8], target: 0, tolerance: 0.02, group: .quality)
        quality.scores = content.scores
        let outcomes = try AllocationScan.run(aValues: AllocationScan.linspace(4.0, 5, 3), kValues: AllocationScan.linspace(0.46, 1.36, 10),
                                              content: content, quality: quality)
        XCTAssertEqual(outcomes.count, 30)
        let r = try AllocationScan.contentToQualityRatio(content.ratios)
        var solved = 0
        for o in outcomes {
            switch o {
            case let .solved(c):
                solved += 1
                XCTAssertEqual(c.layers, inst.layers, "the union names every layer")
                XCTAssertLessThanOrEqual(abs(c.content.mean - c.targets.content), 0.02 + 1e-9)
                XCTAssertLessThanOrEqual(abs(c.quality.mean - c.targets.quality), 0.02 + 1e-9)
                // Each group within ±0.02 of its target, so the whole within ±0.02 of a.
                XCTAssertLessThanOrEqual(abs(c.mean - c.a), 0.02 + 1e-9)
                XCTAssertTrue(c.layers.filter { !LayerGroup.isContent($0) }.allSatisfy { [4, 8].contains(c.bits[$0]!) })
                XCTAssertEqual(c.fileName(prefix: "weight"), String(format: "weight_%.2f_%.2f.yaml", c.a, c.k))
            case let .skipped(a, k, t, reason):
                let expectedT = AllocationScan.groupTargets(a: a, k: k, r: r)
                XCTAssertEqual(t, expectedT)
                let outOfRange = t.quality < 4 || t.quality > 8 || t.content < 2 || t.content > 8
                XCTAssertTrue(outOfRange || reason.contains("infeasible"), reason)
            }
        }
        XCTAssertGreaterThan(solved, 0)
        XCTAssertLessThan(solved, 30, "high k pushes the quality target under 4 bits: some points must be skipped")
    }
}
