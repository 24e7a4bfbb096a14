import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQQuant

/// A quant checkpoint whose scales or zero points could not come from calibration (zero, negative
/// or non-finite Δ; non-finite, fractional or out-of-range zero points) is refused at load with the
/// file, the tensor and the value named, instead of silently producing NaN or garbage images.
final class QuantCheckpointValidationTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-ckpt-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A checkpoint of the tiny UNet after weight and activation calibration (bit widths 2, 4, 8).
    func writeCheckpoint(_ unet: UNet2DConditionModel, _ inputs: UNetInputs) throws -> URL {
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings())
        defer { sim.uninstall() }
        try sim.calibrateWeights()
        sim.setQuantState(weight: true, activation: true)
        sim.setCalibratingActivations(true)
        _ = try unet(inputs)
        sim.setCalibratingActivations(false)
        let url = dir.appendingPathComponent("ckpt.safetensors")
        try QuantCheckpoint.save(sim, to: url)
        return url
    }

    /// Rewrites `source` with `key`'s value at `index` replaced.
    func tampered(_ source: URL, _ label: String, key: String, index: Int, value: Float) throws -> URL {
        let file = try SafetensorsFile(source)
        var tensors: [(String, Tensor)] = []
        for k in file.keys {
            let t = try file.floatTensor(k, copy: true)
            if k == key { t.data[index] = value }
            tensors.append((k, t))
        }
        let url = dir.appendingPathComponent("\(label).safetensors")
        try SafetensorsWriter.write(tensors, metadata: file.metadata, to: url)
        return url
    }

    /// Loads into a new simulator over the same model (loading only sets parameters; nothing runs).
    func loadIntoFreshSimulator(_ url: URL, _ unet: UNet2DConditionModel) throws {
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings())
        defer { sim.uninstall() }
        try QuantCheckpoint.load(url, into: sim)
    }

    func testBadScalesAndZeroPointsNameTheTensor() throws {
        let (unet, inputs) = try tinyUNet()
        let good = try writeCheckpoint(unet, inputs)
        XCTAssertNoThrow(try loadIntoFreshSimulator(good, unet))
        XCTAssertEqual(QuantSettings().bitWidths.count, 3, "the flat indices below assume three bit widths")
        let w = "down_blocks.1.attentions.0.proj_in.weight_quantizer"
        let a = "down_blocks.1.attentions.0.proj_in.act_quantizer"
        let bits = QuantSettings().bitWidths
        // proj_in of level 1 has 64 output channels: flat index 64 + 3 is bit width 1, channel 3.
        let cases: [(String, String, Int, Float, String)] = [
            ("w-delta-zero", "\(w).delta_list", 67, 0, "scale 0.0"),
            ("w-delta-negative", "\(w).delta_list", 5, -0.01, "scale -0.01"),
            ("w-delta-nan", "\(w).delta_list", 130, .nan, "scale nan"),
            ("w-delta-inf", "\(w).delta_list", 0, .infinity, "scale inf"),
            // Finite, but 255 levels of it overflow float32 (index 129: the 8-bit row).
            ("w-delta-overflowing", "\(w).delta_list", 129, 1e38, "scale 1e+38"),
            ("w-zero-point-nan", "\(w).zero_point_list", 2, .nan, "zero point nan"),
            ("w-zero-point-far", "\(w).zero_point_list", 64 + 9, 1e6, "zero point 1000000.0"),
            ("a-delta-zero", "\(a).delta_list", 2, 0, "scale 0.0"),
            ("a-delta-negative-inf", "\(a).delta_list", 1, -.infinity, "scale -inf"),
            ("a-zero-point-negative", "\(a).zero_point_list", 0, -1, "zero point -1.0"),
            // 2^b - 1 is the largest asymmetric zero point: 2^b is one past it.
            ("a-zero-point-past-range", "\(a).zero_point_list", 0, Float(1 << bits[0]), "0...\((1 << bits[0]) - 1)"),
            ("a-zero-point-fraction", "\(a).zero_point_list", 2, 3.5, "zero point 3.5"),
            ("a-zero-point-inf", "\(a).zero_point_list", 1, .infinity, "zero point inf"),
        ]
        for (label, key, index, value, mention) in cases {
            let url = try tampered(good, label, key: key, index: index, value: value)
            XCTAssertThrowsError(try loadIntoFreshSimulator(url, unet), label) { error in
                let m = error.localizedDescription
                for part in [url.path, "'\(key)'", "index \(index)", mention] {
                    XCTAssertTrue(m.contains(part), "\(label): '\(m)' should mention \(part)")
                }
            }
        }
    }

    /// ptq writes every activation quantizer; a checkpoint lacking one would leave that layer
    /// uncalibrated and stop inference inside a forward, so it is refused at load.
    func testMissingActivationQuantizerIsNamed() throws {
        let (unet, inputs) = try tinyUNet()
        let good = try writeCheckpoint(unet, inputs)
        let key = "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.act_quantizer.delta_list"
        let file = try SafetensorsFile(good)
        XCTAssertTrue(file.keys.contains(key))
        let url = dir.appendingPathComponent("missing.safetensors")
        try SafetensorsWriter.write(try file.keys.filter { $0 != key }.map { ($0, try file.floatTensor($0, copy: true)) },
                                    metadata: file.metadata, to: url)
        XCTAssertThrowsError(try loadIntoFreshSimulator(url, unet)) { error in
            let m = error.localizedDescription
            XCTAssertTrue(m.contains(url.path) && m.contains("missing '\(key)'"), m)
        }
    }

    /// NaN activations during calibration (a model whose finite weights overflow) used to trap in the
    /// fake-quant kernel; the layer now runs unquantized while calibrating and saving names it.
    func testCalibrationThatSeesOnlyNaNNamesTheLayer() throws {
        let (unet, inputs) = try tinyUNet()
        let nan = UNetInputs(sample: Tensor(shape: inputs.sample.shape, repeating: .nan), timesteps: inputs.timesteps,
                             encoderHiddenStates: inputs.encoderHiddenStates, textEmbeds: inputs.textEmbeds, timeIds: inputs.timeIds)
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings())
        try sim.calibrateWeights()
        sim.setQuantState(weight: true, activation: true)
        sim.setCalibratingActivations(true)
        _ = try unet(nan)
        sim.setCalibratingActivations(false)
        XCTAssertTrue(sim["time_embedding.linear_1"]!.observers[0].isCalibrated, "finite inputs (the timestep) still calibrate")
        XCTAssertFalse(sim["conv_in"]!.observers[0].isCalibrated)
        let url = dir.appendingPathComponent("nan.safetensors")
        XCTAssertThrowsError(try QuantCheckpoint.save(sim, to: url)) { error in
            let m = error.localizedDescription
            XCTAssertTrue(m.contains("'conv_in'") && m.contains("no finite input"), m)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path), "no checkpoint written")
    }
}
