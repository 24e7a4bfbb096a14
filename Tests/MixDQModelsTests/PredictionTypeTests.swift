import Foundation
import XCTest
import MixDQCompute
import MixDQModels

/// `prediction_type` epsilon, v_prediction and sample in both Euler schedulers against diffusers
/// (Tests/Fixtures/rng/prediction_types.json from scripts/reference/make_prediction_type_fixtures.py;
/// the ancestral "sample" goldens come from diffusers' step with its NotImplementedError replaced by
/// EulerDiscreteScheduler's `pred_original_sample = model_output`).
final class PredictionTypeTests: XCTestCase {
    struct Fixture: Decodable {
        struct Inputs: Decodable { let shape: [Int], sample: String, model_output: String, noise: String }
        struct Step: Decodable {
            let config: String, steps: Int, step_index: Int
            let scaled: String, prev_sample: String, pred_original_sample: String
        }
        struct Loop: Decodable { let config: String, seed: UInt64, steps: Int, shape: [Int], final_latents: String }
        let configs: [String: [String: JSONValue]]
        let step_inputs: Inputs
        let steps: [Step]
        let loops: [Loop]
    }

    /// The config dictionaries hold strings and numbers.
    enum JSONValue: Decodable, Encodable {
        case string(String), bool(Bool), number(Double)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .string(s) }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else { self = .number(try c.decode(Double.self)) }
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case let .string(s): try c.encode(s)
            case let .bool(b): try c.encode(b)
            case let .number(n): try c.encode(n)
            }
        }
    }

    static let fixture: Result<Fixture, Error> = Result {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/rng/prediction_types.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func config(_ name: String) throws -> SchedulerConfig { try Self.fixture.get().config(name) }

    func testEveryTypeAndSchedulerIsCovered() throws {
        let configs = try Self.fixture.get().configs.keys.sorted()
        XCTAssertEqual(configs, ["EulerAncestralDiscreteScheduler/epsilon", "EulerAncestralDiscreteScheduler/sample",
                                 "EulerAncestralDiscreteScheduler/v_prediction", "EulerDiscreteScheduler/epsilon",
                                 "EulerDiscreteScheduler/sample", "EulerDiscreteScheduler/v_prediction"])
        for name in configs {
            let c = try config(name)
            XCTAssertEqual(c.predictionType.rawValue, String(name.split(separator: "/")[1]))
        }
    }

    /// Every step index of a 4-step schedule, noise injected. Same bound as the epsilon steps
    /// (SchedulerTests): only torch's MKL sqrt in σ terms may differ by an ulp.
    func testSingleStepsMatchDiffusers() throws {
        try Self.fixture.get().checkSteps(count: 24)
    }

    /// Whole 1- and 4-step loops drawing latents and step noise from one torch generator.
    func testDenoisingLoopsMatchDiffusers() throws {
        try Self.fixture.get().checkLoops(count: 12)
    }

    /// The three types give three different x0 from the same inputs (a model trained for one type
    /// run with another would be silently wrong), and `sample` returns the model output itself.
    func testTypesAreDistinctAndSampleIsTheModelOutput() throws {
        let sample = Tensor(shape: [4], values: [1, -2, 3, 0.5]), output = Tensor(shape: [4], values: [0.25, 0.5, -1, 2])
        var x0: [SchedulerConfig.PredictionType: [Float]] = [:]
        for type in SchedulerConfig.PredictionType.allCases {
            var c = SchedulerConfig.sdxlTurbo
            c.predictionType = type
            var none = InjectedNoise([Tensor(shape: [4], values: [0, 0, 0, 0])])
            x0[type] = try c.makeScheduler(numInferenceSteps: 1).stepOutput(modelOutput: output, stepIndex: 0, sample: sample, noise: &none)
                .predOriginalSample.scalars
        }
        XCTAssertEqual(x0[.sample], output.scalars)
        let sigma = try SchedulerConfig.sdxlTurbo.makeScheduler(numInferenceSteps: 1).sigmas[0]
        XCTAssertEqual(x0[.epsilon]?[0] ?? .nan, 1 - sigma * 0.25, accuracy: 1e-6)
        XCTAssertEqual(x0[.vPrediction]?[0] ?? .nan, 0.25 * -sigma / (sigma * sigma + 1).squareRoot() + 1 / (sigma * sigma + 1), accuracy: 1e-6)
        XCTAssertEqual(Set(x0.values.map { $0.map(\.bitPattern) }).count, 3)
    }

    func testAnUnknownPredictionTypeNamesTheFileAndValue() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-pred-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("scheduler"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("scheduler/scheduler_config.json")
        for value in ["\"original_sample\"", "\"flow\"", "\"V_PREDICTION\""] {
            try Data(#"{"_class_name": "EulerAncestralDiscreteScheduler", "prediction_type": \#(value)}"#.utf8).write(to: file)
            XCTAssertThrowsError(try SchedulerConfig.load(from: dir)) { error in
                XCTAssertEqual(error.localizedDescription,
                               "unsupported value \(value) (supported: \"epsilon\", \"v_prediction\", \"sample\") for \"prediction_type\" in \(file.path)")
            }
        }
        try Data(#"{"_class_name": "EulerDiscreteScheduler", "prediction_type": 3}"#.utf8).write(to: file)
        XCTAssertThrowsError(try SchedulerConfig.load(from: dir)) { error in
            XCTAssertTrue(error.localizedDescription.contains(file.path) && error.localizedDescription.contains("prediction_type"),
                          error.localizedDescription)
        }
    }
}

/// The comparisons shared by every scheduler golden file in this layout (prediction types, DDIM/LCM).
extension PredictionTypeTests.Fixture {
    func config(_ name: String) throws -> SchedulerConfig {
        let dict = try XCTUnwrap(configs[name], name)
        return try SchedulerConfig.decode(try JSONEncoder().encode(dict), path: "fixture:\(name)")
    }

    /// Each step's `scale_model_input`, `prev_sample` and x0 within 2e-6 of diffusers'.
    func checkSteps(count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let sample = Tensor(shape: step_inputs.shape, values: SchedulerTests.floats(step_inputs.sample))
        let output = Tensor(shape: step_inputs.shape, values: SchedulerTests.floats(step_inputs.model_output))
        let noise = Tensor(shape: step_inputs.shape, values: SchedulerTests.floats(step_inputs.noise))
        XCTAssertEqual(steps.count, count, file: file, line: line)
        for step in steps {
            let s = try config(step.config).makeScheduler(numInferenceSteps: step.steps)
            var injected = InjectedNoise([noise])
            let result = s.stepOutput(modelOutput: output, stepIndex: step.step_index, sample: sample, noise: &injected)
            for (label, got, want) in [("scaled", s.scaleModelInput(sample, stepIndex: step.step_index), step.scaled),
                                       ("prev_sample", result.prevSample, step.prev_sample),
                                       ("pred_original_sample", result.predOriginalSample, step.pred_original_sample)] {
                let r = SchedulerTests.compare(got.scalars, SchedulerTests.floats(want))
                print("\(step.config) step \(step.step_index) \(label): max abs \(r.maxAbs), max rel \(r.maxRel), \(r.differing)/\(got.count) differ in bits")
                XCTAssertLessThanOrEqual(r.maxAbs, 2e-6, "\(step.config) step \(step.step_index) \(label)", file: file, line: line)
            }
        }
    }

    /// Whole loops (latents and step noise from one torch generator) within 1e-5 relative.
    func checkLoops(count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(loops.count, count, file: file, line: line)
        for loop in loops {
            let s = try config(loop.config).makeScheduler(numInferenceSteps: loop.steps)
            let latents = SchedulerTests.denoise(s, seed: loop.seed, shape: loop.shape)
            let want = SchedulerTests.floats(loop.final_latents)
            let r = SchedulerTests.compare(latents.scalars, want)
            let scale = want.map(abs).max() ?? 1
            print("loop \(loop.config) N=\(loop.steps): max abs \(r.maxAbs), max rel \(r.maxRel) (latents up to \(scale)), \(r.differing)/\(want.count) differ in bits")
            XCTAssertLessThanOrEqual(r.maxAbs, 1e-5 * max(scale, 1), "\(loop.config) N=\(loop.steps)", file: file, line: line)
        }
    }
}
