import XCTest
import MixDQCompute
import MixDQModels
import MixDQPipeline
import MixDQQuant

/// The calibration file and checkpoint of `QuantizedInferenceTests` (embedded default model, 4
/// rows, made once per process), and simulators on fresh UNets with quantization off.
enum SensitivityFixture {
    typealias Setup = QuantizedInferenceTests.Setup

    static func setup(file: StaticString = #filePath, line: UInt = #line) throws -> Setup {
        switch QuantizedInferenceTests.setupResult {
        case let .success(s): return s
        case let .failure(e):
            XCTFail(e.description, file: file, line: line)
            throw e
        }
    }

    /// A fresh fp32 UNet with the checkpoint loaded and quantization off everywhere.
    static func unetAndSimulator(_ s: Setup) throws -> (UNet2DConditionModel, QuantSimulator) {
        let unet = try ModelFolder(try MixDQPipelineTestEnv.model()).loadUNet()
        let sim = try QuantizedInferenceSetup(checkpoint: s.checkpoint, settings: s.settings, weightBits: nil, activationBits: nil,
                                              actProtect: [], quantizeWeights: false, quantizeActivations: false).apply(to: unet, log: nil)
        return (unet, sim)
    }

    static func bitwiseEqual(_ a: Tensor, _ b: Tensor) -> Bool {
        a.shape == b.shape && memcmp(a.data, b.data, a.count * 4) == 0
    }
}
