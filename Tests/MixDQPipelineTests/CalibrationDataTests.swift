import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// Shared by CalibrationDataTests, QuantizedInferenceTests and BadInputTests (one namespace so that
/// other files of this target can define their own helpers).
enum MixDQPipelineTestEnv {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = packageRoot.appendingPathComponent("Tests").appendingPathComponent("Fixtures")

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// One scratch folder per test process, removed at exit.
    static let scratch: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("mixdq-pipeline-tests-\(getpid())-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: MixDQPipelineTestEnv.scratch) }
        return url
    }()

    static func tempDir(_ label: String) throws -> URL {
        let url = scratch.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The embedded random default model (tiny SDXL: latent 4x16x16, context 80, pooled 40), written once.
    static let modelResult: Result<URL, Failure> = {
        do { return .success(try DefaultModel.ensure(in: scratch.appendingPathComponent("cache"), kind: .random)) } catch {
            return .failure(Failure(description: "DefaultModel.ensure: \(error)"))
        }
    }()

    static func model(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        switch modelResult {
        case let .success(url): return url
        case let .failure(e):
            XCTFail(e.description, file: file, line: line)
            throw e
        }
    }

    /// A copy of the default model a test may damage.
    static func modelCopy(_ label: String) throws -> URL {
        let dst = try tempDir(label).appendingPathComponent("model")
        try FileManager.default.copyItem(at: try model(), to: dst)
        return dst
    }

    static let prompts = ["A man riding a bicycle down a city street next to parked cars.",
                          "Two dogs playing with a red frisbee on a grassy field.",
                          "A plate of pasta with tomato sauce and basil on a wooden table.",
                          "a lighthouse on a cliff at sunset"]

    /// `configs/sdxl_turbo.yaml` as shipped.
    static func sdxlTurboConfig() throws -> MixDQConfig {
        try MixDQConfig.load(packageRoot.appendingPathComponent("configs/sdxl_turbo.yaml"))
    }

    /// Rows `rows` of a `[N, ...]` tensor.
    static func rows(_ t: Tensor, _ rows: [Int]) -> Tensor {
        let per = t.count / t.shape[0]
        let out = Tensor(uninitializedShape: [rows.count] + t.shape.dropFirst())
        for (k, r) in rows.enumerated() { (out.data + k * per).update(from: t.data + r * per, count: per) }
        return out
    }

    /// Step `s`, row `r` of a `[T, N, ...]` tensor, as `[1, ...]`.
    static func at(_ t: Tensor, step s: Int, row r: Int) -> Tensor {
        let per = t.count / (t.shape[0] * t.shape[1])
        let out = Tensor(uninitializedShape: [1] + t.shape.dropFirst(2))
        out.data.update(from: t.data + (s * t.shape[1] + r) * per, count: per)
        return out
    }

    static func values(_ t: Tensor) -> [Float] { Array(UnsafeBufferPointer(start: t.data, count: t.count)) }

    static func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
        precondition(a.count == b.count, "\(a.shape) vs \(b.shape)")
        var m: Float = 0
        for i in 0..<a.count { m = max(m, abs(a.data[i] - b.data[i])) }
        return m
    }

    static func maxAbs(_ t: Tensor) -> Float {
        var m: Float = 0
        for i in 0..<t.count { m = max(m, abs(t.data[i])) }
        return m
    }

    /// Asserts |a - b| <= tol * max(1, max|b|).
    static func assertClose(_ a: Tensor, _ b: Tensor, tol: Float, _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "\(what): sizes", file: file, line: line)
        guard a.count == b.count else { return }
        let d = maxAbsDiff(a, b), scale = max(1, maxAbs(b))
        XCTAssertLessThanOrEqual(d, tol * scale, "\(what): max abs diff \(d) (scale \(scale))", file: file, line: line)
    }

    /// The UNet input at step 0 for image `index` of a run with `seed`: randn from
    /// `torch.Generator().manual_seed(seed + index)`, times init_noise_sigma, scale_model_input.
    static func firstStepInput(_ pipeline: TextToImagePipeline, seed: UInt64, index: Int, steps: Int) throws -> Tensor {
        let scheduler = try pipeline.scheduler(steps: steps)
        let c = try pipeline.unet.config.inChannels
        let size = try pipeline.defaultSize / 8
        var noise = BatchNoise(seeds: [seed &+ UInt64(index)])
        let latents = Ops.scale(noise.randn([1, c, size, size]), by: scheduler.initNoiseSigma)
        return scheduler.scaleModelInput(latents, stepIndex: 0)
    }

    static let floatDatasets = ["xs", "ts", "text_embs", "outputs", "added_cond_kwargs/text_embeds", "added_cond_kwargs/time_ids"]

    static func readAll(_ url: URL) throws -> [String: Tensor] {
        let f = try HDF5File.open(url)
        defer { try? f.close() }
        var out: [String: Tensor] = [:]
        for name in floatDatasets { out[name] = try f.readTensor(name) }
        return out
    }
}

/// `calib-data` (CalibrationDataGenerator + CalibrationData): the HDF5 layout of the original's
/// gen_calib_data.py (names, `[T, N, ...]` shapes), CFG rows, resume (issue "MixDQ quantization" 7).
final class CalibrationDataTests: XCTestCase {
    typealias Env = MixDQPipelineTestEnv

    func generator(_ prompts: [String], batch: Int, steps: Int, guidance: Float, seed: UInt64 = 42, output: URL,
                   images: URL? = nil) -> CalibrationDataGenerator {
        CalibrationDataGenerator(prompts: prompts, batchSize: batch, steps: steps, guidance: guidance, height: 128, width: 128,
                                 seed: seed, output: output, imageFolder: images)
    }

    func testLayoutNamesShapesAndValues() throws {
        let dir = try Env.tempDir("calib-layout")
        let pipeline = try TextToImagePipeline(folder: ModelFolder(try Env.model()))
        let out = dir.appendingPathComponent("calib.h5")
        let (T, N) = (2, 4)
        try generator(Env.prompts, batch: 2, steps: T, guidance: 0, output: out).run(pipeline, log: try RunLog(dir.appendingPathComponent("log")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path + ".partial"))

        let f = try HDF5File.open(out)
        defer { try? f.close() }
        XCTAssertEqual(Set(try f.datasetNames()), Set(Env.floatDatasets + ["prompts"]))
        XCTAssertEqual(try f.shape(of: "xs"), [T, N, 4, 16, 16])
        XCTAssertEqual(try f.shape(of: "outputs"), [T, N, 4, 16, 16])
        XCTAssertEqual(try f.shape(of: "ts"), [T, N])
        XCTAssertEqual(try f.shape(of: "text_embs"), [T, N, 77, 80])
        XCTAssertEqual(try f.shape(of: "added_cond_kwargs/text_embeds"), [T, N, 40])
        XCTAssertEqual(try f.shape(of: "added_cond_kwargs/time_ids"), [T, N, 6])
        XCTAssertEqual(try f.readStrings("prompts"), Env.prompts)
        XCTAssertEqual(try f.intAttribute("batches_done"), 2)

        let d = try Env.readAll(out)
        let timesteps = try pipeline.scheduler(steps: T).timesteps
        XCTAssertEqual(timesteps.count, T)
        XCTAssertEqual(Env.values(d["ts"]!), timesteps.flatMap { Array(repeating: $0, count: N) }, "ts[t, n] = timestep of step t")
        XCTAssertEqual(Env.values(d["added_cond_kwargs/time_ids"]!),
                       Array(Array(repeating: [Float(128), 128, 0, 0, 128, 128], count: T * N).joined()))

        // Row i is image i: its step-0 input is the noise of seed 42 + i.
        for i in 0..<N {
            let want = try Env.firstStepInput(pipeline, seed: 42, index: i, steps: T)
            XCTAssertEqual(Env.values(Env.at(d["xs"]!, step: 0, row: i)), Env.values(want), "xs[0, \(i)] is not image \(i)'s noise")
        }
        // The prompt conditioning of row i, identical at every step.
        let emb = try pipeline.encode(Env.prompts)
        for s in 0..<T {
            for i in 0..<N {
                Env.assertClose(Env.at(d["text_embs"]!, step: s, row: i), Env.rows(emb.context, [i]), tol: 1e-5, "text_embs[\(s), \(i)]")
                Env.assertClose(Env.at(d["added_cond_kwargs/text_embeds"]!, step: s, row: i), Env.rows(emb.pooled!, [i]),
                                tol: 1e-5, "text_embeds[\(s), \(i)]")
            }
        }
        XCTAssertGreaterThan(Env.maxAbsDiff(Env.at(d["xs"]!, step: 1, row: 0), Env.at(d["xs"]!, step: 0, row: 0)), 0,
                             "step 1 input equals step 0 input")

        // outputs[t, n] is the FP UNet on (xs, ts, text_embs, added_cond_kwargs) of the same row.
        let data = try CalibrationData.load(out)
        XCTAssertEqual(data.count, T * N)
        for flat in [0, 3, N + 1] {
            let b = data.batch([flat])
            let eps = try pipeline.unet(b)
            Env.assertClose(eps, Env.at(d["outputs"]!, step: flat / N, row: flat % N), tol: 1e-4, "outputs row \(flat)")
            XCTAssertEqual(b.timesteps, [timesteps[flat / N]])
        }

        // n_samples keeps the first n rows of every step.
        let two = try CalibrationData.load(out, nSamples: 2)
        XCTAssertEqual(two.count, T * 2)
        XCTAssertEqual(two.ts, [timesteps[0], timesteps[0], timesteps[1], timesteps[1]])
        XCTAssertEqual(Env.values(two.batch([2]).sample), Env.values(Env.at(d["xs"]!, step: 1, row: 0)))
    }

    func testGuidanceDoublesRowsAndKeepsThemAligned() throws {
        let dir = try Env.tempDir("calib-cfg")
        let pipeline = try TextToImagePipeline(folder: ModelFolder(try Env.model()))
        let out = dir.appendingPathComponent("cfg.h5")
        let prompts = Array(Env.prompts.prefix(3))          // batches [0, 1] and [2]: an uneven last batch
        let (T, N) = (2, 6)
        try generator(prompts, batch: 2, steps: T, guidance: 2.5, output: out).run(pipeline, log: try RunLog(dir.appendingPathComponent("log")))

        let f = try HDF5File.open(out)
        XCTAssertEqual(try f.shape(of: "xs"), [T, N, 4, 16, 16])
        XCTAssertEqual(try f.shape(of: "outputs"), [T, N, 4, 16, 16])
        XCTAssertEqual(try f.shape(of: "ts"), [T, N])
        XCTAssertEqual(try f.shape(of: "text_embs"), [T, N, 77, 80])
        XCTAssertEqual(try f.shape(of: "added_cond_kwargs/text_embeds"), [T, N, 40])
        XCTAssertEqual(try f.shape(of: "added_cond_kwargs/time_ids"), [T, N, 6])
        XCTAssertEqual(try f.readStrings("prompts"), prompts, "prompts stay one per prompt")
        XCTAssertEqual(try f.attribute("guidance_scale"), "2.5")
        XCTAssertTrue((try f.attribute("rows") ?? "").contains("unconditional"))
        try f.close()

        let d = try Env.readAll(out)
        let timesteps = try pipeline.scheduler(steps: T).timesteps
        XCTAssertEqual(Env.values(d["ts"]!), timesteps.flatMap { Array(repeating: $0, count: N) },
                       "every row of step t has step t's timestep (the original misaligns ts with CFG)")
        // Per batch: unconditional rows, then conditional rows.
        let layout: [(uncond: Int, cond: Int, prompt: Int)] = [(0, 2, 0), (1, 3, 1), (4, 5, 2)]
        let emb = try pipeline.encode(prompts)
        for s in 0..<T {
            for (u, c, p) in layout {
                let xu = Env.at(d["xs"]!, step: s, row: u), xc = Env.at(d["xs"]!, step: s, row: c)
                XCTAssertEqual(Env.values(xu), Env.values(xc), "step \(s): rows \(u) and \(c) see the same latents")
                XCTAssertEqual(Env.maxAbs(Env.at(d["text_embs"]!, step: s, row: u)), 0, "row \(u) is unconditional (zeros)")
                XCTAssertEqual(Env.maxAbs(Env.at(d["added_cond_kwargs/text_embeds"]!, step: s, row: u)), 0)
                Env.assertClose(Env.at(d["text_embs"]!, step: s, row: c), Env.rows(emb.context, [p]), tol: 1e-5, "text_embs[\(s), \(c)]")
                Env.assertClose(Env.at(d["added_cond_kwargs/text_embeds"]!, step: s, row: c), Env.rows(emb.pooled!, [p]),
                                tol: 1e-5, "text_embeds[\(s), \(c)]")
                XCTAssertGreaterThan(Env.maxAbsDiff(Env.at(d["outputs"]!, step: s, row: u), Env.at(d["outputs"]!, step: s, row: c)), 0,
                                     "conditional and unconditional outputs differ")
            }
        }
        for (_, c, p) in layout {
            let want = try Env.firstStepInput(pipeline, seed: 42, index: p, steps: T)
            XCTAssertEqual(Env.values(Env.at(d["xs"]!, step: 0, row: c)), Env.values(want), "row \(c) is prompt \(p)'s noise")
        }
        // Each row's output is the UNet on that row's inputs, timestep included.
        let data = try CalibrationData.load(out)
        XCTAssertEqual(data.count, T * N)
        for flat in [0, 2, 5, N + 1, N + 4] {
            let b = data.batch([flat])
            let eps = try pipeline.unet(b)
            Env.assertClose(eps, Env.at(d["outputs"]!, step: flat / N, row: flat % N), tol: 1e-4, "outputs row \(flat)")
        }
    }

    func testResumesAfterAnInterruptedRun() throws {
        let dir = try Env.tempDir("calib-resume")
        let pipeline = try TextToImagePipeline(folder: ModelFolder(try Env.model()))
        let reference = dir.appendingPathComponent("reference.h5")
        try generator(Env.prompts, batch: 2, steps: 1, guidance: 0, output: reference)
            .run(pipeline, log: try RunLog(dir.appendingPathComponent("reference.log")))

        // Interrupted in batch 2 of 2: image 2 cannot be written (a folder is in its place).
        let out = dir.appendingPathComponent("calib.h5"), partial = dir.appendingPathComponent("calib.h5.partial")
        let images = dir.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images.appendingPathComponent("2.png"), withIntermediateDirectories: true)
        let log = dir.appendingPathComponent("calib.log")
        let gen = generator(Env.prompts, batch: 2, steps: 1, guidance: 0, output: out, images: images)
        XCTAssertThrowsError(try gen.run(pipeline, log: try RunLog(log))) { error in
            XCTAssertTrue("\(error)".contains("2.png"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "no final file after an interrupted run")
        XCTAssertTrue(FileManager.default.fileExists(atPath: partial.path))
        do {
            let f = try HDF5File.open(partial)
            XCTAssertEqual(try f.intAttribute("batches_done"), 1)
            try f.close()
        }

        try FileManager.default.removeItem(at: images.appendingPathComponent("2.png"))
        let marker = Data("finished before the interruption".utf8)
        try marker.write(to: images.appendingPathComponent("0.png"))
        try gen.run(pipeline, log: try RunLog(log))
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
        XCTAssertEqual(try Data(contentsOf: images.appendingPathComponent("0.png")), marker, "batch 1 was redone on resume")
        XCTAssertTrue(FileManager.default.fileExists(atPath: images.appendingPathComponent("3.png").path))
        let text = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(text.contains("resuming") && text.contains("after 1 of 2 batch(es)"), text)

        // The resumed file holds exactly what an uninterrupted run writes.
        let want = try Env.readAll(reference), got = try Env.readAll(out)
        for name in Env.floatDatasets {
            XCTAssertEqual(got[name]!.shape, want[name]!.shape, name)
            XCTAssertEqual(Env.values(got[name]!), Env.values(want[name]!), "\(name) differs from an uninterrupted run")
        }
        let f = try HDF5File.open(out)
        XCTAssertEqual(try f.readStrings("prompts"), Env.prompts)
        XCTAssertEqual(try f.intAttribute("batches_done"), 2)
        try f.close()
    }

    func testPartialFileFromOtherSettingsIsStartedOver() throws {
        let dir = try Env.tempDir("calib-restart")
        let pipeline = try TextToImagePipeline(folder: ModelFolder(try Env.model()))
        let out = dir.appendingPathComponent("calib.h5")
        let images = dir.appendingPathComponent("images")
        let prompts = Array(Env.prompts.prefix(2))
        try FileManager.default.createDirectory(at: images.appendingPathComponent("1.png"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try generator(prompts, batch: 1, steps: 1, guidance: 0, seed: 42, output: out, images: images)
            .run(pipeline, log: try RunLog(dir.appendingPathComponent("a.log"))))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.path + ".partial"))
        try FileManager.default.removeItem(at: images.appendingPathComponent("1.png"))

        // Another seed: the partial file does not match and is not resumed.
        let log = dir.appendingPathComponent("b.log")
        try generator(prompts, batch: 1, steps: 1, guidance: 0, seed: 7, output: out).run(pipeline, log: try RunLog(log))
        let text = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(text.contains("starting over"), text)
        let d = try Env.readAll(out)
        for i in 0..<2 {
            let want = try Env.firstStepInput(pipeline, seed: 7, index: i, steps: 1)
            XCTAssertEqual(Env.values(Env.at(d["xs"]!, step: 0, row: i)), Env.values(want), "row \(i) must use seed 7 + \(i)")
        }
    }
}
