import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline
import MixDQQuant

/// `search sensitivity` as a library (issue 9 item 1) on the embedded default model: scores equal
/// direct measurements, kill + rerun and shards + merge give the unsharded file byte for byte, and
/// bad journals, shards and layer patterns are refused by name with no output written.
final class SensitivityTests: XCTestCase {
    typealias Fixture = SensitivityFixture

    /// One layer from most stages (conv_in, time embedding, down, mid, up with a split shortcut,
    /// conv_out), in model (registry) order.
    static let probeLayers = ["conv_in", "time_embedding.linear_1", "down_blocks.1.attentions.0.proj_in", "mid_block.resnets.0.conv1",
                              "up_blocks.1.resnets.2.conv_shortcut", "conv_out"]
    static var probePattern: String { "^(" + probeLayers.map { NSRegularExpression.escapedPattern(for: $0) }.joined(separator: "|") + ")$" }

    func plan(_ s: Fixture.Setup, _ sim: QuantSimulator, type: SensitivityType = .weight, bits: [Int] = [2, 4, 8],
              pattern: String? = SensitivityTests.probePattern, shard: Shard = .whole) throws -> SensitivityPlan {
        try SensitivityPlan(type: type, group: .quality, bits: bits, layersPattern: pattern, metric: nil, shard: shard,
                            modelLayers: sim.paths, availableBits: s.settings.bitWidths)
    }

    /// A quality (SQNR) run into `out`, as the CLI wires it.
    @discardableResult
    func runQuality(_ s: Fixture.Setup, out: URL, type: SensitivityType = .weight, bits: [Int] = [2, 4, 8], shard: Shard = .whole,
                    stopAfter: Int? = nil, lines: ((String) -> Void)? = nil) throws -> SensitivityRun.Outcome {
        let (unet, sim) = try Fixture.unetAndSimulator(s)
        sim.setCachesQuantizedWeights(false)
        let plan = try plan(s, sim, type: type, bits: bits, shard: shard)
        let identity = try SensitivityRunIdentity.make(plan: plan, checkpoint: s.checkpoint, settings: s.settings, quality: .init(calibration: s.calib), content: nil)
        var run = SensitivityRun(plan: plan, identity: identity, output: out)
        run.stopAfter = stopAfter
        return try run.run(prepare: {
            let q = try QualitySensitivity(unet: unet, sim: sim, calibration: s.calib, cacheBudgetBytes: 1 << 30)
            XCTAssertTrue(q.cache.isActive, q.cache.note)
            XCTAssertGreaterThan(q.fpSQNR, 60, "FP UNet vs the stored outputs: the calibration rows do not reproduce")
            return { try q.measure($0, type: plan.type, bits: plan.bits) }
        }, report: { lines?($0) })
    }

    func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }
    func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

    /// SQNR computed here from scratch: the stored outputs read straight from the HDF5 file.
    func directSQNR(_ output: Tensor, calib: URL) throws -> Double {
        let f = try HDF5File.open(calib)
        defer { try? f.close() }
        let y = try f.readTensor("outputs")
        XCTAssertEqual(y.count, output.count)
        var signal = 0.0, noise = 0.0
        for i in 0..<y.count {
            let r = Double(y.data[i])
            signal += r * r
            noise += (Double(output.data[i]) - r) * (Double(output.data[i]) - r)
        }
        return 10 * log10(signal / noise)
    }

    func testScoresEqualADirectMeasurementForWeightAndAct() throws {
        let s = try Fixture.setup()
        let dir = try MixDQPipelineTestEnv.tempDir("sens-direct")
        for type in SensitivityType.allCases {
            let out = dir.appendingPathComponent("\(type.rawValue).yaml")
            var progress: [String] = []
            XCTAssertEqual(try runQuality(s, out: out, type: type, lines: { progress.append($0) }), .complete(measured: 6))
            XCTAssertEqual(progress.count, 6)
            XCTAssertTrue(progress.last?.hasPrefix("[6/6] model.conv_out: [") == true && progress.last?.contains("ETA") == true,
                          progress.last ?? "")
            let file = try SensitivityFile.load(out)
            XCTAssertEqual(file.runLayers, Self.probeLayers)
            // The original's format: SensitivityScores (what allocate reads) takes it as is.
            let scores = try SensitivityScores.load(out, columns: [2, 4, 8])
            XCTAssertEqual(scores.layers, Self.probeLayers)

            // Direct: a fresh model, one layer quantized through a bit config, the plain forward.
            let (unet, sim) = try Fixture.unetAndSimulator(s)
            let data = try CalibrationData.load(s.calib)
            let b = data.batch(Array(0..<data.count))
            let inputs = b
            for layer in Self.probeLayers {
                var direct: [Double] = []
                for bits in [2, 4, 8] {
                    let config = BitConfig(bits: [layer: bits], source: "direct.yaml")
                    if type == .weight { try sim.applyWeightBits(config); sim[layer]!.weightEnabled = true }
                    else { try sim.applyActivationBits(config); sim[layer]!.activationEnabled = true }
                    direct.append(try directSQNR(try unet(inputs), calib: s.calib))
                    sim.setQuantState(weight: false, activation: false)
                }
                XCTAssertEqual(scores.scores[layer], direct, "\(type) \(layer): search sensitivity vs a direct measurement")
                XCTAssertLessThan(direct[0], direct[2], "\(type) \(layer): 2 bits should hurt more than 8")
                print("sensitivity \(type.rawValue) \(layer): \(direct)")
            }
        }
    }

    func testKilledRunResumesToTheSameFile() throws {
        let s = try Fixture.setup()
        let dir = try MixDQPipelineTestEnv.tempDir("sens-resume")
        let whole = dir.appendingPathComponent("whole.yaml")
        try runQuality(s, out: whole)
        XCTAssertFalse(exists(URL(fileURLWithPath: whole.path + ".journal")), "journal left after completion")

        // Stopped after 2 layers: no output, a journal with 2 records.
        let out = dir.appendingPathComponent("resumed.yaml")
        let journal = URL(fileURLWithPath: out.path + ".journal")
        XCTAssertEqual(try runQuality(s, out: out, stopAfter: 2), .stopped(journaled: 2))
        XCTAssertFalse(exists(out))
        XCTAssertEqual(try text(journal).split(separator: "\n").filter { $0.hasPrefix("model.") }.count, 2)
        // A kill during the third record's write leaves a torn line: dropped and remeasured.
        let handle = try FileHandle(forWritingTo: journal)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("model.down_blocks.1.attentions.0.proj_in: [12.5, 3".utf8))
        try handle.close()
        XCTAssertEqual(try runQuality(s, out: out), .complete(measured: 4))
        XCTAssertEqual(try text(out), try text(whole))
        XCTAssertFalse(exists(journal))
        // A rerun on the complete file does nothing.
        XCTAssertEqual(try runQuality(s, out: out), .alreadyComplete)
    }

    func testShardsMergeToTheUnshardedFile() throws {
        let s = try Fixture.setup()
        let dir = try MixDQPipelineTestEnv.tempDir("sens-shards")
        let whole = dir.appendingPathComponent("whole.yaml")
        try runQuality(s, out: whole)
        let shards = (0..<2).map { dir.appendingPathComponent("shard\($0).yaml") }
        for (i, url) in shards.enumerated() { try runQuality(s, out: url, shard: Shard(index: i, count: 2)) }
        XCTAssertEqual(try SensitivityFile.load(shards[0]).scores.keys.sorted(), ["conv_in", "down_blocks.1.attentions.0.proj_in", "up_blocks.1.resnets.2.conv_shortcut"])
        let merged = try SensitivityMerge.merge(shards.reversed())
        XCTAssertEqual(merged.text, try text(whole), "two shards merged differ from the unsharded run")

        // Bad shard sets, each named.
        func refuses(_ urls: [URL], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try SensitivityMerge.merge(urls), file: file, line: line) { e in
                XCTAssertTrue(e.localizedDescription.contains(message), e.localizedDescription, file: file, line: line)
            }
        }
        func variant(_ name: String, of url: URL, _ edit: (String) -> String) throws -> URL {
            let v = dir.appendingPathComponent(name)
            try edit(try text(url)).write(to: v, atomically: true, encoding: .utf8)
            return v
        }
        refuses([shards[0]], "missing shard(s) 1/2")
        let other = try variant("other-run.yaml", of: shards[1]) {
            $0.replacingOccurrences(of: "# checkpoint-fnv1a64: ", with: "# checkpoint-fnv1a64: 0")
        }
        refuses([shards[0], other], "not a shard of the same run as \(shards[0].path) (checkpoint-fnv1a64")
        let conflicting = try variant("conflict.yaml", of: shards[0]) {
            $0.replacingOccurrences(of: "model.conv_in: [", with: "model.conv_in: [1")
        }
        refuses([shards[0], conflicting, shards[1]], "layer 'conv_in' measured twice with different values")
        XCTAssertEqual(try SensitivityMerge.merge([shards[0], shards[0], shards[1]]).text, try text(whole), "a repeated identical shard is harmless")
        let torn = try variant("torn.yaml", of: shards[1]) { String($0.dropLast(8)) }
        refuses([shards[0], torn], "torn.yaml: does not end with a newline")
        let unfinished = try variant("unfinished.yaml", of: shards[1]) { t in
            t.split(separator: "\n").filter { !$0.hasPrefix("model.conv_out") }.joined(separator: "\n") + "\n"
        }
        refuses([shards[0], unfinished], "has no scores for its layer 'conv_out'")
        let garbage = try variant("garbage.yaml", of: shards[1]) { $0.replacingOccurrences(of: "model.conv_out: [", with: "model.conv_out: [x") }
        refuses([shards[0], garbage], "garbage.yaml, line")
        let threeWay = try variant("three.yaml", of: shards[1]) { $0.replacingOccurrences(of: "# shard: 1/2", with: "# shard: 1/3") }
        refuses([shards[0], threeWay], "different shard counts")
    }

    func testJournalOfAnotherRunIsRefused() throws {
        let s = try Fixture.setup()
        let dir = try MixDQPipelineTestEnv.tempDir("sens-journal")
        // A journal of another run that holds no layer yet (stopped while preparing) is replaced.
        let fresh = dir.appendingPathComponent("fresh.yaml")
        XCTAssertEqual(try runQuality(s, out: fresh, bits: [4, 8], stopAfter: 0), .stopped(journaled: 0))
        XCTAssertEqual(try runQuality(s, out: fresh, bits: [4], stopAfter: 1), .stopped(journaled: 1))
        XCTAssertTrue(try text(URL(fileURLWithPath: fresh.path + ".journal")).contains("# bits: 4\n"))

        let out = dir.appendingPathComponent("out.yaml")
        XCTAssertEqual(try runQuality(s, out: out, bits: [4, 8], stopAfter: 1), .stopped(journaled: 1))
        XCTAssertThrowsError(try runQuality(s, out: out)) { e in
            let m = e.localizedDescription
            XCTAssertTrue(m.contains("out.yaml.journal: this journal belongs to another run") && m.contains("# bits: 4,8"), m)
        }
        XCTAssertFalse(exists(out))
        // A complete line that is not a record is corruption, not a torn write.
        try (try text(URL(fileURLWithPath: out.path + ".journal")) + "garbage\n").write(toFile: out.path + ".journal", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try runQuality(s, out: out, bits: [4, 8])) { e in
            XCTAssertTrue(e.localizedDescription.contains("not a score line of this run"), e.localizedDescription)
        }
        XCTAssertFalse(exists(out))
    }

    func testBadPlansAreRefusedByName() throws {
        let s = try Fixture.setup()
        let (_, sim) = try Fixture.unetAndSimulator(s)
        let cases: [(() throws -> SensitivityPlan, String)] = [
            ({ try self.plan(s, sim, pattern: "^nothing_like_this$") }, "--layers '^nothing_like_this$' matches no layer of the quality group"),
            ({ try self.plan(s, sim, pattern: "(") }, "not a valid regular expression"),
            ({ try self.plan(s, sim, bits: [3]) }, "no parameters for 3 bit(s)"),
            ({ try self.plan(s, sim, bits: [8, 4]) }, "ascending"),
            ({ try self.plan(s, sim, bits: []) }, "at least one bit width"),
        ]
        for (make, message) in cases {
            XCTAssertThrowsError(try make()) { e in XCTAssertTrue(e.localizedDescription.contains(message), e.localizedDescription) }
        }
        // The pattern matches with or without the model. prefix; shards partition the run.
        let p = try plan(s, sim, pattern: "^model\\.conv_(in|out)$")
        XCTAssertEqual(p.layers, ["conv_in", "conv_out"])
        let q = try plan(s, sim, pattern: "conv_(in|out)$", shard: Shard(index: 1, count: 2))
        XCTAssertEqual(q.shardLayers, ["conv_out"])
        let all = try SensitivityPlan(type: .act, group: .all, bits: [8], layersPattern: nil, metric: nil, shard: .whole,
                                      modelLayers: sim.paths, availableBits: [2, 4, 8])
        XCTAssertEqual(all.layers, sim.paths)
        XCTAssertEqual(all.metric(of: "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"), .ssim)
        XCTAssertEqual(all.metric(of: "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2"), .ssim)
        XCTAssertEqual(all.metric(of: "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k"), .sqnr)
    }
}
