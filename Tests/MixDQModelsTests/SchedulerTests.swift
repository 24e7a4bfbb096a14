import Foundation
import XCTest
import MixDQCompute
import MixDQModels

/// Goldens: Tests/Fixtures/rng/schedulers.json from scripts/reference/make_rng_scheduler_fixtures.py
/// (diffusers 0.42.1 / torch 2.15; float32 values stored as bit patterns).
final class SchedulerTests: XCTestCase {
    private static let fixture: [String: Any] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/rng/schedulers.json").standardizedFileURL
        return try! JSONSerialization.jsonObject(with: try! Data(contentsOf: url)) as! [String: Any]
    }()

    static func floats(_ hex: String) -> [Float] {
        let utf8 = Array(hex.utf8)
        return stride(from: 0, to: utf8.count, by: 8).map {
            Float(bitPattern: UInt32(String(decoding: utf8[$0..<($0 + 8)], as: UTF8.self), radix: 16)!)
        }
    }

    private static func config(_ name: String) throws -> SchedulerConfig {
        let dict = (fixture["configs"] as! [String: Any])[name]!
        return try SchedulerConfig.decode(try JSONSerialization.data(withJSONObject: dict), path: "fixture:\(name)")
    }

    /// Max |a-b| / max(|b|, tiny) and the number of values whose bits differ.
    static func compare(_ got: [Float], _ want: [Float]) -> (maxRel: Float, maxAbs: Float, differing: Int) {
        var maxRel: Float = 0, maxAbs: Float = 0, differing = 0
        for (g, w) in zip(got, want) {
            if g.bitPattern != w.bitPattern { differing += 1 }
            let d = abs(g - w)
            maxAbs = max(maxAbs, d)
            maxRel = max(maxRel, d / max(abs(w), 1e-30))
        }
        return (maxRel, maxAbs, differing)
    }

    /// The fixtures' loop: latents = randn(seed) · init_noise_sigma, model output =
    /// 0.5 · scale_model_input(latents) + 0.1, every step's noise from the same torch generator.
    static func denoise(_ s: any Scheduler, seed: UInt64, shape: [Int]) -> Tensor {
        var g = TorchGenerator(seed: seed)
        var latents = g.randn(shape)
        for k in 0..<latents.count { latents.data[k] = latents.data[k] * s.initNoiseSigma }
        for i in 0..<s.timesteps.count {
            let x = s.scaleModelInput(latents, stepIndex: i)
            let output = Tensor(uninitializedShape: x.shape)
            for k in 0..<x.count { output.data[k] = x.data[k] * 0.5 + 0.1 }
            latents = s.step(modelOutput: output, stepIndex: i, sample: latents, noise: &g)
        }
        return latents
    }

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-sched-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    // MARK: config

    func testLoadsSDXLTurboSchedulerConfig() throws {
        // stabilityai/sdxl-turbo scheduler/scheduler_config.json, ignored keys included
        let json = """
        {
          "_class_name": "EulerAncestralDiscreteScheduler",
          "_diffusers_version": "0.24.0.dev0",
          "beta_end": 0.012,
          "beta_schedule": "scaled_linear",
          "beta_start": 0.00085,
          "clip_sample": false,
          "interpolation_type": "linear",
          "num_train_timesteps": 1000,
          "prediction_type": "epsilon",
          "sample_max_value": 1.0,
          "set_alpha_to_one": false,
          "skip_prk_steps": true,
          "steps_offset": 1,
          "timestep_spacing": "trailing",
          "trained_betas": null
        }
        """
        let model = try temporaryDirectory()
        try FileManager.default.createDirectory(at: model.appendingPathComponent("scheduler"), withIntermediateDirectories: true)
        try Data(json.utf8).write(to: model.appendingPathComponent("scheduler/scheduler_config.json"))
        let config = try SchedulerConfig.load(from: model)
        XCTAssertEqual(config, .sdxlTurbo)
        let scheduler = try config.makeScheduler(numInferenceSteps: 1)
        XCTAssertTrue(scheduler is EulerAncestralDiscreteScheduler)
        XCTAssertEqual(scheduler.timesteps, [999])
    }

    func testUnsupportedClassIsNamedWithItsFile() throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("scheduler_config.json")
        try Data(#"{"_class_name": "DPMSolverMultistepScheduler", "beta_start": 0.00085}"#.utf8).write(to: file)
        XCTAssertThrowsError(try SchedulerConfig.load(from: file)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("DPMSolverMultistepScheduler") && text.contains(file.path) && text.contains("LCMScheduler"), text)
        }
    }

    func testBadValuesAndMissingFilesAreNamed() throws {
        let bad = #"{"_class_name": "EulerDiscreteScheduler", "timestep_spacing": "sideways"}"#
        XCTAssertThrowsError(try SchedulerConfig.decode(Data(bad.utf8), path: "x/scheduler_config.json")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("timestep_spacing") && text.contains("sideways") && text.contains("x/scheduler_config.json"), text)
        }
        let karras = #"{"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true}"#
        XCTAssertThrowsError(try SchedulerConfig.decode(Data(karras.utf8))) { error in
            XCTAssertTrue("\(error)".contains("use_karras_sigmas"))
        }
        XCTAssertThrowsError(try SchedulerConfig.decode(Data("{".utf8), path: "broken.json")) { error in
            XCTAssertTrue("\(error)".contains("broken.json"))
        }
        let missing = URL(fileURLWithPath: "/nonexistent/scheduler_config.json")
        XCTAssertThrowsError(try SchedulerConfig.load(from: missing)) { error in
            XCTAssertTrue("\(error)".contains(missing.path))
        }
        XCTAssertThrowsError(try EulerAncestralDiscreteScheduler(config: .sdxlTurbo, numInferenceSteps: 0))
    }

    // MARK: tables and schedules

    func testTrainingTablesMatchTorchBitForBit() throws {
        // betas (torch.linspace with its fused start + step * i) and alphas_cumprod (double accumulator)
        for (name, value) in Self.fixture["tables"] as! [String: [String: String]] {
            let schedule = NoiseSchedule(config: try Self.config(name))
            let betas = Self.compare(schedule.betas, Self.floats(value["betas"]!))
            let cumprod = Self.compare(schedule.alphasCumprod, Self.floats(value["alphas_cumprod"]!))
            XCTAssertEqual(betas.differing, 0, "\(name) betas: max rel \(betas.maxRel)")
            XCTAssertEqual(cumprod.differing, 0, "\(name) alphas_cumprod: max rel \(cumprod.maxRel)")
        }
        let turbo = NoiseSchedule(config: .sdxlTurbo)
        XCTAssertEqual(turbo.alphasCumprod[0], 0.99914998, accuracy: 1e-7)
        XCTAssertEqual(turbo.alphasCumprod[999], 0.00466010, accuracy: 1e-7)
        XCTAssertEqual(turbo.sigmaTable[999], 14.614647, accuracy: 1e-5)
        XCTAssertEqual(turbo.sigmaTable[0], 0.0291675, accuracy: 1e-6)
    }

    func testSDXLTurboScheduleMatchesSpecification() throws {
        // sdxl-architecture.md §7
        let expected: [Int: (t: [Float], sigmas: [Float])] = [
            1: ([999], [14.614647, 0]),
            2: ([999, 499], [14.614647, 1.612887, 0]),
            3: ([999, 666, 332], [14.614647, 2.918309, 0.929215, 0]),
            4: ([999, 749, 499, 249], [14.614647, 4.081731, 1.612887, 0.693205, 0]),
        ]
        for (n, e) in expected {
            let s = try EulerAncestralDiscreteScheduler(config: .sdxlTurbo, numInferenceSteps: n)
            XCTAssertEqual(s.timesteps, e.t, "N=\(n)")
            XCTAssertEqual(s.sigmas.count, e.sigmas.count)
            for (a, b) in zip(s.sigmas, e.sigmas) { XCTAssertEqual(a, b, accuracy: 2e-6 * max(b, 1), "N=\(n)") }
            XCTAssertEqual(s.initNoiseSigma, 14.614647, accuracy: 1e-5)
        }
        let eight = try EulerAncestralDiscreteScheduler(config: .sdxlTurbo, numInferenceSteps: 8)
        XCTAssertEqual(eight.timesteps, [999, 874, 749, 624, 499, 374, 249, 124])
        let one = try EulerAncestralDiscreteScheduler(config: .sdxlTurbo, numInferenceSteps: 1)
        let x = Tensor(shape: [1], values: [1])
        XCTAssertEqual(one.scaleModelInput(x, stepIndex: 0).scalars[0], 0.0682649, accuracy: 1e-7)
    }

    /// torch's float32 `sqrt` on x86 wheels runs through MKL and is not correctly rounded (1 ulp
    /// off for about 19% of inputs, e.g. 190 of the 1000 sigma-table entries); the Swift port uses
    /// IEEE `squareRoot()`. So sigmas are compared to 1e-6 relative, and bit for bit only for the
    /// SDXL-Turbo schedules, whose entries all happen to be correctly rounded in torch too.
    func testSchedulesMatchDiffusers() throws {
        var worst: Float = 0
        var exact = 0, total = 0
        for c in Self.fixture["schedules"] as! [[String: Any]] {
            let name = c["config"] as! String, n = c["steps"] as! Int
            let s = try Self.config(name).makeScheduler(numInferenceSteps: n)
            XCTAssertEqual(s.timesteps, (c["timesteps"] as! [Double]).map { Float($0) }, "\(name) N=\(n) timesteps")
            let want = Self.floats(c["sigmas"] as! String)
            XCTAssertEqual(s.sigmas.count, want.count)
            let r = Self.compare(s.sigmas, want)
            worst = max(worst, r.maxRel)
            exact += want.count - r.differing
            total += want.count
            XCTAssertLessThanOrEqual(r.maxRel, 1e-6, "\(name) N=\(n) sigmas")
            let wantInit = Self.floats(c["init_noise_sigma"] as! String)[0]
            XCTAssertEqual(s.initNoiseSigma, wantInit, accuracy: 1e-6 * wantInit, "\(name) N=\(n) init_noise_sigma")
            if name == "sdxl_turbo" {
                XCTAssertEqual(r.differing, 0, "SDXL-Turbo N=\(n) sigmas differ in bits (max rel \(r.maxRel))")
                XCTAssertEqual(s.initNoiseSigma.bitPattern, wantInit.bitPattern)
            }
        }
        print("schedules: \(exact)/\(total) sigmas bit-identical, worst relative difference \(worst)")
    }

    func testAncestralSigmasForFourSteps() throws {
        let s = try EulerAncestralDiscreteScheduler(config: .sdxlTurbo, numInferenceSteps: 4)
        let up: [Float] = [3.919305, 1.481626, 0.625915, 0]
        let down: [Float] = [1.139988, 0.637329, 0.297934, 0]
        for i in 0..<4 {
            let (u, d) = s.ancestralSigmas(stepIndex: i)
            XCTAssertEqual(u, up[i], accuracy: 2e-6)
            XCTAssertEqual(d, down[i], accuracy: 2e-6)
        }
    }

    // MARK: steps

    /// Steps are float32 arithmetic in diffusers' operation order; the only deviations left come
    /// from torch's MKL sqrt in `(sigma**2 + 1) ** 0.5` and σ_up/σ_down (see above).
    func testSingleStepsMatchDiffusersWithInjectedNoise() throws {
        let inputs = Self.fixture["step_inputs"] as! [String: Any]
        let shape = inputs["shape"] as! [Int]
        let sample = Tensor(shape: shape, values: Self.floats(inputs["sample"] as! String))
        let output = Tensor(shape: shape, values: Self.floats(inputs["model_output"] as! String))
        let noise = Tensor(shape: shape, values: Self.floats(inputs["noise"] as! String))
        var exact = 0, total = 0
        var worst: Float = 0
        for c in Self.fixture["steps"] as! [[String: Any]] {
            let name = c["config"] as! String, i = c["step_index"] as! Int
            let s = try Self.config(name).makeScheduler(numInferenceSteps: c["steps"] as! Int)
            var injected = InjectedNoise([noise])
            let result = s.stepOutput(modelOutput: output, stepIndex: i, sample: sample, noise: &injected)
            let ancestral = s is EulerAncestralDiscreteScheduler
            XCTAssertEqual(injected.drawn, ancestral ? 1 : 0, "\(name): noise draws")
            for (label, got) in [("scaled", s.scaleModelInput(sample, stepIndex: i)),
                                 ("prev_sample", result.prevSample),
                                 ("pred_original_sample", result.predOriginalSample)] {
                let want = Self.floats(c[label] as! String)
                let r = Self.compare(got.scalars, want)
                exact += want.count - r.differing
                total += want.count
                worst = max(worst, r.maxRel)
                XCTAssertLessThanOrEqual(r.maxAbs, 2e-6, "\(name) step \(i) \(label)")
            }
        }
        print("steps: \(exact)/\(total) values bit-identical, worst relative difference \(worst)")
    }

    func testDenoisingLoopsWithTorchGeneratorMatchDiffusers() throws {
        // latents = randn * init_noise_sigma; eps = 0.5 * scale_model_input(x) + 0.1; step(generator=g)
        for c in Self.fixture["loops"] as! [[String: Any]] {
            let name = c["config"] as! String, n = c["steps"] as! Int
            let s = try Self.config(name).makeScheduler(numInferenceSteps: n)
            let latents = Self.denoise(s, seed: UInt64(c["seed"] as! Int), shape: c["shape"] as! [Int])
            let r = Self.compare(latents.scalars, Self.floats(c["final_latents"] as! String))
            print("loop \(name) N=\(n): \(latents.count - r.differing)/\(latents.count) bit-identical, max abs \(r.maxAbs)")
            XCTAssertLessThanOrEqual(r.maxAbs, 1e-5, "\(name) N=\(n) final latents")
            if name == "sdxl_turbo" && n == 1 {
                // the SDXL-Turbo 1-step path involves no sqrt that torch rounds differently
                XCTAssertEqual(r.differing, 0, "SDXL-Turbo 1-step latents must be bit-identical")
            }
        }
    }
}
