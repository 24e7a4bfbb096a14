import XCTest
import MixDQCompute
import MixDQModels
import MixDQPipeline
import MixDQQuant

/// The staged UNet forward and the FP stage cache the sensitivity search runs from: bit for bit
/// the full forward, from every stage boundary, with and without a perturbed layer.
final class UNetStagesTests: XCTestCase {
    func bitwiseEqual(_ a: Tensor, _ b: Tensor) -> Bool { SensitivityFixture.bitwiseEqual(a, b) }

    func testStagesCoverEveryLayerInOrder() throws {
        let unet = try ModelFolder(try MixDQPipelineTestEnv.model()).loadUNet()
        let stages = unet.stages
        XCTAssertEqual(stages.first, .embedding)
        XCTAssertEqual(stages.last, .out)
        XCTAssertEqual(stages.count, 2 + unet.config.downBlockTypes.count + 1 + unet.config.upBlockTypes.count + 1)
        // Every registered layer belongs to a stage; past the embedding (registered after conv_in),
        // stage indices never decrease in module order.
        var last = 0
        for path in unet.registry.paths {
            let k = try XCTUnwrap(unet.stageIndex(containing: path), path)
            if k == 0 { XCTAssertTrue(path.hasPrefix("time_embedding.") || path.hasPrefix("add_embedding."), path); continue }
            XCTAssertGreaterThanOrEqual(k, last, "\(path) runs before the previous layer's stage")
            last = k
        }
        XCTAssertEqual(unet.stageIndex(containing: "conv_in"), 1)
        XCTAssertEqual(unet.stageIndex(containing: "add_embedding.linear_2"), 0)
        XCTAssertEqual(unet.stageIndex(containing: "mid_block.resnets.0.conv1"), stages.firstIndex(of: .mid))
        XCTAssertNil(unet.stageIndex(containing: "down_blocks.10.resnets.0.conv1"))
        XCTAssertNil(unet.stageIndex(containing: "conv_in_extra"))
    }

    func testStagedForwardEqualsTheFullForwardBitForBit() throws {
        let s = try SensitivityFixture.setup()
        let (unet, sim) = try SensitivityFixture.unetAndSimulator(s)
        let rows = try CalibrationRows.load(s.calib)
        let full = try unet(rows.inputs)
        let cache = try FPStageCache(unet: unet, inputs: rows.inputs, budgetBytes: 1 << 30)
        XCTAssertTrue(cache.isActive, cache.note)
        XCTAssertTrue(bitwiseEqual(cache.fpOutput, full), "staged FP forward differs from the full forward")
        XCTAssertGreaterThan(cache.heldBytes, 0)

        // One layer per stage, perturbed: the run from its stage's boundary equals the full forward
        // with the same perturbation (and running twice from a boundary gives the same result: the
        // cached tensors are not written).
        var seen = Set<Int>()
        let probes = unet.registry.paths.filter { seen.insert(unet.stageIndex(containing: $0)!).inserted }
        XCTAssertEqual(probes.count, unet.stages.count)
        for path in probes {
            let layer = try XCTUnwrap(sim[path])
            layer.weightBits = 2; layer.weightEnabled = true
            layer.activationBits = 4; layer.activationEnabled = true
            let want = try unet(rows.inputs)
            let got = try cache.output(perturbing: path)
            let again = try cache.output(perturbing: path)
            layer.weightEnabled = false; layer.activationEnabled = false
            XCTAssertFalse(bitwiseEqual(want, full), "\(path): the perturbation changed nothing (a vacuous check)")
            XCTAssertTrue(bitwiseEqual(got, want), "\(path): staged run differs from the full forward")
            XCTAssertTrue(bitwiseEqual(again, want), "\(path): a second run from the cache differs (cache overwritten?)")
        }
        XCTAssertTrue(bitwiseEqual(try cache.output(perturbing: "conv_out"), full), "perturbation not undone")
    }

    func testOverBudgetFallsBackToTheFullForward() throws {
        let s = try SensitivityFixture.setup()
        let (unet, sim) = try SensitivityFixture.unetAndSimulator(s)
        let rows = try CalibrationRows.load(s.calib)
        let cache = try FPStageCache(unet: unet, inputs: rows.inputs, budgetBytes: 1000)
        XCTAssertFalse(cache.isActive)
        XCTAssertTrue(cache.note.contains("full forward"), cache.note)
        sim["up_blocks.0.resnets.0.conv1"]!.weightEnabled = true
        let want = try unet(rows.inputs)
        XCTAssertTrue(bitwiseEqual(try cache.output(perturbing: "up_blocks.0.resnets.0.conv1"), want))
    }
}
