import Foundation
import MixDQCompute
import XCTest

/// `mixdq bench attention` and `bench unet --attention-baseline`: where a blocked bf16 engine exists
/// (AMX tiles, AVX512-BF16), each is timed beside oneDNN's matmuls and their ratio printed; elsewhere
/// the baseline is refused with the reason.
final class BenchAttentionCLITests: XCTestCase {
    func testAttentionPrintsEveryKernelThisCPUHas() throws {
        let bf16 = Precision.bf16.isAvailable
        let text = try MixDQCLI.succeed(["bench", "attention", "--tokens", "40", "--heads", "2", "--head-dim", "32", "--runs", "2",
                                         "--precision", bf16 ? "bf16" : "fp32"]).stdout
        XCTAssertTrue(text.contains("40x40 tokens"), text)
        let engines = BlockedBF16Attention.Engine.allCases.filter(BlockedBF16Attention.isAvailable)
        if bf16 && AttentionKernel.blockedEngine(precision: .bf16, headDim: 32) != nil {
            XCTAssertTrue(text.contains("oneDNN matmuls: median"), text)
            for engine in engines {
                for needle in ["\(engine.rawValue): median", "\(engine.rawValue) / oneDNN: "] { XCTAssertTrue(text.contains(needle), text) }
            }
        } else {
            XCTAssertFalse(text.contains("/ oneDNN"), text)
        }
    }

    func testUNetAttentionBaselineNeedsBF16AndABlockedEngine() throws {
        let config = MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny/unet/config.json").path
        let args = ["bench", "unet", "--random-weights", "--model-config", config, "--height", "64", "--width", "64", "--runs", "1",
                    "--warmup", "0", "--attention-baseline"]
        _ = try MixDQCLI.fail(args, mentioning: ["--attention-baseline", "--precision bf16"])
        guard let engine = AttentionKernel.blockedEngine(precision: .bf16, headDim: 64) else {
            throw XCTSkip("neither AMX tiles nor AVX512-BF16 here (\(CPUInfo.current.summary))")
        }
        _ = try MixDQCLI.fail(args + ["--precision", "bf16", "--json"], mentioning: ["--attention-baseline", "--json"])
        let text = try MixDQCLI.succeed(args + ["--precision", "bf16"]).stdout
        XCTAssertTrue(text.contains("\(engine.rawValue) / oneDNN: forward"), text)
    }
}
