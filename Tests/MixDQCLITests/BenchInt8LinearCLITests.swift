import XCTest

/// `mixdq bench int8-linear`: runs on a tiny shape and reports the CPU, both fp32 kernels, the
/// W8A8 layer and the integer matmul on both paths with oneDNN's implementation names, 4- and 2-bit
/// weights packed at rest beside the same codes as s8; bad flags
/// are errors that name the flag.
final class BenchInt8LinearCLITests: XCTestCase {
    func testTinyShapeReportsEveryPath() throws {
        let r = try MixDQCLI.succeed(["bench", "int8-linear", "--rows", "3", "--in-features", "5", "--out-features", "7", "--runs", "1"])
        for needle in ["CPU: ", "linear 3x5x7", "W8A8", "fp32 OpenBLAS", "fp32 oneDNN", "W8A8 layer", "u8s8s32 matmul, direct",
                       "u8s8s32 matmul, 7-bit split", "W4A8 layer, s8 at rest", "W4A8 layer, 4-bit at rest", "W2A8 layer, 2-bit at rest",
                       "of s8 at rest", "2-bit unpack alone"] {
            XCTAssertTrue(r.stdout.contains(needle), "missing '\(needle)':\n\(r.stdout)")
        }
    }

    func testBadFlagsNameTheFlag() throws {
        try MixDQCLI.fail(["bench", "int8-linear", "--weight-bits", "9"], mentioning: ["--weight-bits"])
        try MixDQCLI.fail(["bench", "int8-linear", "--rows", "0"], mentioning: ["--rows"])
        try MixDQCLI.fail(["bench", "int8-linear", "--in-features", "70000", "--rows", "1", "--out-features", "1"], mentioning: ["--in-features"])
        try MixDQCLI.fail(["bench", "int8-linear", "--runs", "0"], mentioning: ["--runs"])
    }
}
