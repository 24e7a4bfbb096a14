import Foundation
import XCTest
import MixDQCompute
import MixDQModels

/// DDIMScheduler (eta 0, as SD1.5 folders ship it) and LCMScheduler against diffusers: timesteps,
/// single steps (LCM's injected noise from the fixture) and whole 1/2/4-step loops
/// (Tests/Fixtures/rng/ddim_lcm.json from scripts/reference/make_ddim_lcm_fixtures.py).
final class DDIMLCMSchedulerTests: XCTestCase {
    struct Timesteps: Decodable { let timesteps: [String: [String: [Int]]] }

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/rng/ddim_lcm.json")
    static let fixture: Result<PredictionTypeTests.Fixture, Error> = Result {
        try JSONDecoder().decode(PredictionTypeTests.Fixture.self, from: Data(contentsOf: url))
    }

    func config(_ name: String) throws -> SchedulerConfig { try Self.fixture.get().config(name) }

    func testTimestepsMatchDiffusers() throws {
        let all = try JSONDecoder().decode(Timesteps.self, from: Data(contentsOf: Self.url)).timesteps
        XCTAssertEqual(all.count, 7)
        for (name, byCount) in all {
            for (n, want) in byCount {
                let s = try config(name).makeScheduler(numInferenceSteps: Int(n)!)
                XCTAssertEqual(s.timesteps, want.map(Float.init), "\(name) N=\(n)")
            }
        }
        // Spot values known from the LCM paper's schedule: 4 steps of 50 -> 999, 759, 499, 259.
        XCTAssertEqual(all["LCMScheduler/lcm"]?["4"], [999, 759, 499, 259])
        XCTAssertEqual(all["DDIMScheduler/sd15"]?["4"], [751, 501, 251, 1])
    }

    func testClassDefaultsFollowDiffusers() throws {
        let ddim = try SchedulerConfig.decode(Data(#"{"_class_name": "DDIMScheduler"}"#.utf8))
        XCTAssertEqual(ddim.timestepSpacing, .leading)
        XCTAssertTrue(ddim.clipSample)
        let lcm = try SchedulerConfig.decode(Data(#"{"_class_name": "LCMScheduler"}"#.utf8))
        XCTAssertEqual(lcm.timestepSpacing, .leading)
        XCTAssertFalse(lcm.clipSample)
        XCTAssertEqual(lcm.originalInferenceSteps, 50)
        XCTAssertEqual(lcm.timestepScaling, 10)
        XCTAssertEqual(try SchedulerConfig.decode(Data(#"{"_class_name": "EulerDiscreteScheduler"}"#.utf8)).timestepSpacing, .linspace)
    }

    func testSingleStepsMatchDiffusers() throws {
        try Self.fixture.get().checkSteps(count: 28)
    }

    func testDenoisingLoopsMatchDiffusers() throws {
        try Self.fixture.get().checkLoops(count: 21)
    }

    func testBadScheduleValuesAreNamed() throws {
        var lcm = try config("LCMScheduler/lcm")
        XCTAssertThrowsError(try lcm.makeScheduler(numInferenceSteps: 51)) { error in
            XCTAssertTrue(error.localizedDescription.contains("original_inference_steps (50)"), error.localizedDescription)
        }
        lcm.originalInferenceSteps = 4
        XCTAssertNoThrow(try lcm.makeScheduler(numInferenceSteps: 4))
        var ddim = try config("DDIMScheduler/sd15")
        ddim.stepsOffset = 990
        XCTAssertThrowsError(try ddim.makeScheduler(numInferenceSteps: 4)) { error in
            XCTAssertTrue(error.localizedDescription.contains("steps_offset"), error.localizedDescription)
        }
        for (json, key) in [(#"{"_class_name": "DDIMScheduler", "thresholding": true}"#, "thresholding"),
                            (#"{"_class_name": "LCMScheduler", "original_inference_steps": 0}"#, "original_inference_steps"),
                            (#"{"_class_name": "LCMScheduler", "num_train_timesteps": 40, "original_inference_steps": 50}"#, "original_inference_steps"),
                            (#"{"_class_name": "LCMScheduler", "timestep_scaling": -1}"#, "timestep_scaling"),
                            (#"{"_class_name": "DDIMScheduler", "clip_sample_range": 0}"#, "clip_sample_range")] {
            XCTAssertThrowsError(try SchedulerConfig.decode(Data(json.utf8), path: "x/scheduler_config.json")) { error in
                let m = error.localizedDescription
                XCTAssertTrue(m.contains(key) && m.contains("x/scheduler_config.json"), m)
            }
        }
        // original_inference_steps is LCM's alone: an Euler schedule shorter than its default 50 loads.
        XCTAssertNoThrow(try SchedulerConfig.decode(Data(#"{"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 40}"#.utf8),
                                                    path: "x/scheduler_config.json"))
    }
}
