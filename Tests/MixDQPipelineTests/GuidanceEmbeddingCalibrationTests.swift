import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// An LCM-distilled UNet (`time_cond_proj_dim`) takes the guidance scale as an embedding, so calibration has
/// one row per prompt (no unconditional rows) and records the embedding as `timestep_cond`, which PTQ and
/// the sensitivity search replay with every row (Tests/Fixtures/sd_pipeline_tiny/unet_lcm).
final class GuidanceEmbeddingCalibrationTests: XCTestCase {
    func testCalibrationRecordsTheGuidanceEmbeddingAndReplaysIt() throws {
        let fixtures = SDPipelineParityTests.dir
        var folder = ModelFolder(fixtures.appendingPathComponent("model"), unet: fixtures.appendingPathComponent("unet_lcm"))
        folder.schedulerOverride = .lcm
        let pipeline = try TextToImagePipeline(folder: folder)
        let dir = try PipelineFixtures.makeTempDir("guidance-calib")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("calib.h5")
        let prompts = ["a photo of a cat", "a red bus", "two dogs"]
        try CalibrationDataGenerator(prompts: prompts, batchSize: 2, steps: 2, guidance: 8, height: 64, width: 64, seed: 42,
                                     output: out, imageFolder: nil).run(pipeline, log: try RunLog(dir.appendingPathComponent("log")))

        let file = try HDF5File.open(out)
        let cond = try file.readTensor("timestep_cond")
        let outputs = try file.readTensor("outputs")
        try file.close()
        XCTAssertEqual(cond.shape, [2, 3, 32], "one row per prompt and step: guidance 8 on this UNet is no CFG")
        // Every row holds get_guidance_scale_embedding(8 - 1, 32) (the golden's timestep_cond).
        let golden = try SafetensorsFile(fixtures.appendingPathComponent("lcm_distilled_steps4.safetensors")).floatTensor("timestep_cond")
        for row in 0..<6 {
            let got = Tensor(shape: [1, 32], values: Array(UnsafeBufferPointer(start: cond.data + row * 32, count: 32)))
            let want = Tensor(shape: [1, 32], values: Array(UnsafeBufferPointer(start: golden.data, count: 32)))
            XCTAssertLessThanOrEqual(PipelineFixtures.relativeError(got, want), 1e-6, "timestep_cond row \(row)")
        }

        // PTQ's batches carry timestep_cond: replaying rows reproduces the stored outputs exactly.
        let data = try CalibrationData.load(out)
        let batch = data.batch([0, 4])
        XCTAssertEqual(batch.timestepCond?.shape, [2, 32])
        let eps = try pipeline.unet(batch)
        let flat = outputs.reshaped([6] + outputs.shape.dropFirst(2))
        let rowCount = eps.count / 2
        let want = Tensor(shape: eps.shape, values: Array(UnsafeBufferPointer(start: flat.data, count: rowCount))
                                                     + Array(UnsafeBufferPointer(start: flat.data + 4 * rowCount, count: rowCount)))
        let rel = PipelineFixtures.relativeError(eps, want)
        print(String(format: "timestep_cond replay: rel %.3e", rel))
        XCTAssertLessThanOrEqual(rel, 1e-5)

        // Without the embedding the UNet computes something else: the replay above depends on it.
        var plain = batch
        plain.timestepCond = nil
        XCTAssertGreaterThan(PipelineFixtures.relativeError(try pipeline.unet(plain), want), 1e-3)
    }
}
