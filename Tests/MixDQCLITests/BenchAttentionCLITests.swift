import Foundation
import MixDQCompute
import XCTest

/// `mixdq bench attention` and `bench unet --attention-baseline`: where AMX exists, both kernels are
/// timed and their ratio printed; elsewhere the baseline is refused with the reason.
final class BenchAttentionCLITests: XCTestCase {
    func testAttentionPrintsBothKernelsWhereAMXExists() throws {
        let bf16 = Precision.bf16.isAvailable
        let text = try MixDQCLI.succeed(["bench", "attention", "--tokens", "40", "--heads", "2", "--head-dim", "32", "--runs", "2",
                                         "--precision", bf16 ? "bf16" : "fp32"]).stdout
        XCTAssertTrue(text.contains("40x40 tokens"), text)
        if bf16 && AttentionKernel.runsOnAMX(precision: .bf16, headDim: 32) {
            for needle in ["AMX tiles: median", "oneDNN matmuls: median", "AMX / oneDNN: "] { XCTAssertTrue(text.contains(needle), text) }
        } else {
            XCTAssertFalse(text.contains("AMX"), text)
        }
    }

    func testUNetAttentionBaselineNeedsBF16AndAMX() throws {
        let config = MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny/unet/config.json").path
        let args = ["bench", "unet", "--random-weights", "--model-config", config, "--height", "64", "--width", "64", "--runs", "1",
                    "--warmup", "0", "--attention-baseline"]
        _ = try MixDQCLI.fail(args, mentioning: ["--attention-baseline", "--precision bf16"])
        guard AttentionKernel.runsOnAMX(precision: .bf16, headDim: 64) else { throw XCTSkip("no AMX tiles here (\(CPUInfo.current.summary))") }
        _ = try MixDQCLI.fail(args + ["--precision", "bf16", "--json"], mentioning: ["--attention-baseline", "--json"])
        let text = try MixDQCLI.succeed(args + ["--precision", "bf16"]).stdout
        XCTAssertTrue(text.contains("AMX / oneDNN: forward"), text)
    }
}
