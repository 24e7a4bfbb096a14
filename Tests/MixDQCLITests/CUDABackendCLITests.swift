import Foundation
import XCTest

/// `mixdq infer --backend cuda` where the CUDA library cannot be loaded: a non-zero exit with the
/// loader's message (what was tried, dlerror's text), no crash, no image.
final class CUDABackendCLITests: XCTestCase {
    func testInferBackendCudaWithoutTheLibraryExitsWithTheReason() throws {
        let w = try QuantFlowCLITests.sharedWorkspace()
        let dir = try MixDQCLI.tempDir("cuda-backend")
        let images = dir.appendingPathComponent("images")
        // An explicit library path that cannot exist: the same answer on machines with and without a GPU.
        let missing = dir.appendingPathComponent("no-such-dir/libmixdq_cuda.so").path
        let r = try MixDQCLI.fail(["infer", "--base-path", w.ptq.path, "--image-folder", images.path, "--num-imgs", "1",
                                   "--batch-size", "1", "--backend", "cuda"],
                                  mentioning: ["CUDA backend unavailable", missing, "No such file or directory", "MIXDQ_CUDA_LIB"],
                                  environment: ["MIXDQ_CUDA_LIB": missing])
        XCTAssertFalse(FileManager.default.fileExists(atPath: images.appendingPathComponent("0.png").path), "no image: \(r)")
    }
}
