import XCTest
import MixDQCompute
import MixDQModels
import MixDQPipeline

/// A job runs a component's convolutions as Winograd only when its runs, in single-row 512x512
/// equivalents, reach the measured break-even of the one-off weight transform: 4 UNet forwards,
/// 1 VAE decode.
final class WinogradPaybackTests: XCTestCase {
    func testTheBreakEvenRule() {
        XCTAssertEqual(WinogradPayback.unetBreakEven, 4)
        XCTAssertEqual(WinogradPayback.vaeBreakEven, 1)
        // UNet: 1 step, 1 image, 1 row at 512x512 is 1 equivalent; 4 forwards, 2 rows x 2 forwards,
        // or one forward at 1024x1024 (4x the pixels) reach 4.
        XCTAssertEqual(WinogradPayback.unet(forwards: 1, rows: 1, height: 512, width: 512, under: .auto), .direct)
        XCTAssertEqual(WinogradPayback.unet(forwards: 3, rows: 1, height: 512, width: 512, under: .auto), .direct)
        XCTAssertEqual(WinogradPayback.unet(forwards: 4, rows: 1, height: 512, width: 512, under: .auto), .auto)
        XCTAssertEqual(WinogradPayback.unet(forwards: 2, rows: 2, height: 512, width: 512, under: .auto), .auto)
        XCTAssertEqual(WinogradPayback.unet(forwards: 1, rows: 1, height: 1024, width: 1024, under: .auto), .auto)
        XCTAssertEqual(WinogradPayback.unet(forwards: 1, rows: 1, height: 1024, width: 1016, under: .auto), .direct)
        // VAE: one decode at 512x512 pays; at 256x256 it takes four.
        XCTAssertEqual(WinogradPayback.vae(decodes: 1, height: 512, width: 512, under: .auto), .auto)
        XCTAssertEqual(WinogradPayback.vae(decodes: 3, height: 256, width: 256, under: .auto), .direct)
        XCTAssertEqual(WinogradPayback.vae(decodes: 4, height: 256, width: 256, under: .auto), .auto)
        // MIXDQ_CONV_ALGORITHM=direct is never overridden.
        XCTAssertEqual(WinogradPayback.unet(forwards: 100, rows: 2, height: 1024, width: 1024, under: .direct), .direct)
        XCTAssertEqual(WinogradPayback.vae(decodes: 100, height: 1024, width: 1024, under: .direct), .direct)
    }

    /// The pipeline loads each component with its planned algorithm; a component already loaded
    /// keeps the one it was made with.
    func testThePipelinePlansPerComponent() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-winograd-plan-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = dir.appendingPathComponent("model")
        try DefaultModel.write(to: folder)
        let pipeline = try TextToImagePipeline(folder: ModelFolder(folder))
        guard ConvolutionAlgorithm.current == .auto else { throw XCTSkip("MIXDQ_CONV_ALGORITHM is set to \(ConvolutionAlgorithm.current)") }
        // One 1-step image at 512x512: the UNet stays direct, the VAE decode pays.
        let line = pipeline.planConvolutions(images: 1, steps: 1, guidance: 0, height: 512, width: 512)
        XCTAssertEqual(pipeline.unetConvolutions, .direct)
        XCTAssertEqual(pipeline.vaeConvolutions, .auto)
        XCTAssertTrue(line.contains("UNet direct") && line.contains("VAE Winograd"), line)
        // Guidance doubles the rows of this UNet (no guidance embedding): 2 images x 1 step x 2 rows = 4.
        pipeline.planConvolutions(images: 2, steps: 1, guidance: 5, height: 512, width: 512)
        XCTAssertEqual(pipeline.unetConvolutions, .auto)
        pipeline.planConvolutions(images: 1, steps: 1, guidance: 0, height: 512, width: 512)
        let unet = try pipeline.unet
        let kernels = unet.layers.compactMap { ($0 as? Conv2d)?.kernel as? DNNLConvolution }
        XCTAssertFalse(kernels.isEmpty)
        XCTAssertTrue(kernels.allSatisfy { $0.algorithm == .direct }, "the UNet was loaded with its planned algorithm")
        pipeline.planConvolutions(images: 8, steps: 4, guidance: 0, height: 512, width: 512)
        XCTAssertEqual(pipeline.unetConvolutions, .direct, "a loaded UNet keeps the algorithm it was made with")
        XCTAssertEqual(pipeline.vaeConvolutions, .auto)
        let vaeKernels = try pipeline.vae.layers.compactMap { ($0 as? Conv2d)?.kernel as? DNNLConvolution }
        XCTAssertFalse(vaeKernels.isEmpty)
        XCTAssertTrue(vaeKernels.allSatisfy { $0.algorithm == .auto })
    }
}

/// The CLI's jobs free the UNet before their last decode, so the UNet and the VAE decode are never
/// resident together in a one-image run; the images are the same bytes either way.
final class UNetReleaseTests: XCTestCase {
    func testTheLastDecodeRunsWithoutTheUNetAndChangesNoByte() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-unet-release-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = dir.appendingPathComponent("model")
        try DefaultModel.write(to: folder)
        let log = try RunLog(dir.appendingPathComponent("run.log"))
        func run(_ sub: String, releasing: Bool) throws -> (TextToImagePipeline, [Data]) {
            var job = ImageGenerationJob(prompts: ["a red bicycle", "a blue car"], seed: 7, batchSize: 1, steps: 2, guidance: 0,
                                         height: 128, width: 128, folder: dir.appendingPathComponent(sub))
            job.releasesUNetBeforeLastDecode = releasing
            let pipeline = try TextToImagePipeline(folder: ModelFolder(folder))
            XCTAssertEqual(try job.run(pipeline, log: log), 2)
            return (pipeline, try (0..<2).map { try Data(contentsOf: job.imageURL($0)) })
        }
        let (kept, keptImages) = try run("kept", releasing: false)
        let (released, releasedImages) = try run("released", releasing: true)
        XCTAssertTrue(kept.isUNetLoaded)
        XCTAssertFalse(released.isUNetLoaded, "the UNet is freed before the last decode")
        XCTAssertEqual(keptImages, releasedImages)
        // A pipeline that released its UNet loads it again when asked.
        _ = try released.unet
        XCTAssertTrue(released.isUNetLoaded)
    }
}
