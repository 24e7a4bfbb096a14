import Foundation
import MixDQCompute
import XCTest

/// `mixdq bench unet --quant`: the tiny SDXL UNet config with random weights, every Conv2d/Linear on
/// the int8 backend. The layer count and weight sizes it reports are checked against the fixture's
/// safetensors header (read here, independently of mixdq); bad specs and bit files are errors that
/// name the flag, the file or the layer.
final class BenchUNetQuantCLITests: XCTestCase {
    static let unetFolder = MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny/unet")
    static let config = unetFolder.appendingPathComponent("config.json").path

    /// Conv2d/Linear paths and their weight element counts, from the fixture's safetensors header:
    /// the `.weight` tensors of rank 2 (Linear) or 4 (Conv2d).
    static func fixtureLayers() throws -> [(path: String, parameters: Int)] {
        try fixtureHeader().compactMap { key, value -> (String, Int)? in
            guard key.hasSuffix(".weight"), let shape = (value as? [String: Any])?["shape"] as? [Int], [2, 4].contains(shape.count) else { return nil }
            return (String(key.dropLast(".weight".count)), shape.reduce(1, *))
        }.sorted { $0.0 < $1.0 }
    }

    /// The fixture's safetensors header (8-byte little-endian length, then JSON), read here without mixdq.
    static func fixtureHeader() throws -> [String: Any] {
        let data = try Data(contentsOf: unetFolder.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any])
    }

    func bench(_ extra: [String]) -> [String] {
        ["bench", "unet", "--random-weights", "--model-config", Self.config, "--height", "64", "--width", "64",
         "--runs", "1", "--warmup", "0"] + extra
    }

    func testW8A8ReportsTheQuantizedModel() throws {
        let layers = try Self.fixtureLayers()
        XCTAssertEqual(layers.count, 264, "fixture changed: the numbers below assume its 264 Conv2d/Linear layers")
        let parameters = layers.reduce(0) { $0 + $1.parameters }

        let text = try MixDQCLI.succeed(bench(["--quant", "w8a8"])).stdout
        for needle in ["w8a8 on the int8 backend", "CPU: ", "quantized layers: \(layers.count) (W8: \(layers.count))",
                       "weight codes held as s8", "oneDNN: matmul ", "resident weight bytes", "median ", "GFLOP/s", "peak RSS "] {
            XCTAssertTrue(text.contains(needle), "missing '\(needle)':\n\(text)")
        }

        let run = try MixDQCLI.succeed(bench(["--quant", "W8A8", "--json"]))
        let line = try XCTUnwrap(run.stdout.split(separator: "\n").last { $0.hasPrefix("{") }, run.description)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(json["precision"] as? String, "w8a8")
        XCTAssertEqual(json["backend"] as? String, "int8")
        XCTAssertEqual(json["quantized_layers"] as? Int, layers.count)
        XCTAssertEqual(json["weight_params"] as? Int, parameters)
        XCTAssertEqual(json["fp32_weight_bytes"] as? Int, 4 * parameters)
        // One byte per code at least (oneDNN may pad blocks), per-channel terms on top; far below fp32.
        let resident = try XCTUnwrap(json["resident_weight_bytes"] as? Int)
        XCTAssertGreaterThanOrEqual(resident, parameters)
        XCTAssertLessThan(resident, 2 * parameters)
        XCTAssertEqual((json["times"] as? [Double])?.count, 1)
        XCTAssertGreaterThan(try XCTUnwrap(json["median_s"] as? Double), 0)
        XCTAssertGreaterThan(try XCTUnwrap(json["gflop"] as? Double), 0)
        XCTAssertGreaterThan(try XCTUnwrap(json["peak_rss_gb"] as? Double), 0)
        XCTAssertFalse((json["cpu"] as? String ?? "").isEmpty)
        XCTAssertTrue((json["impl_matmul"] as? String ?? "").contains("ff.net.0.proj"), "\(json)")
        XCTAssertTrue((json["impl_conv"] as? String ?? "").contains("resnets.0.conv1"), "\(json)")
    }

    /// A bit file naming every layer: half at 4 bits, half at 8, counted back per width.
    func testMixedPrecisionBitFile() throws {
        let layers = try Self.fixtureLayers()
        let dir = try MixDQCLI.tempDir("bench-mp")
        let yaml = dir.appendingPathComponent("weight_mp.yaml")
        let bits = layers.enumerated().map { $0.offset % 2 == 0 ? 4 : 8 }
        try zip(layers, bits).map { "model.\($0.path): \($1)" }.joined(separator: "\n").write(to: yaml, atomically: true, encoding: .utf8)
        let r = try MixDQCLI.succeed(bench(["--quant", yaml.path]))
        let fours = bits.filter { $0 == 4 }.count
        XCTAssertTrue(r.stdout.contains("weight_mp.yaml on the int8 backend"), r.description)
        XCTAssertTrue(r.stdout.contains("quantized layers: \(layers.count) (W4: \(fours), W8: \(layers.count - fours))"), r.description)
        XCTAssertTrue(r.stdout.contains("weight codes held as packed 2/4/8-bit"), r.description)
    }

    /// `w<b>a16`: weight-only layers run the float kernel on the dequantized weight, held in the
    /// requested precision: exactly 4 (fp32) or 2 (bf16) bytes per weight plus the fp32 biases, as
    /// counted from the fixture's header.
    func testWeightOnlyLayersHoldTheirWeightsInTheFloatPrecision() throws {
        let layers = try Self.fixtureLayers()
        let parameters = layers.reduce(0) { $0 + $1.parameters }
        let biases = try Self.fixtureBiasParameters(Set(layers.map(\.path)))
        for (precision, bytes) in [("fp32", 4)] + (Precision.bf16.isAvailable ? [("bf16", 2)] : []) {
            let run = try MixDQCLI.succeed(bench(["--quant", "w4a16", "--precision", precision, "--json"]))
            let line = try XCTUnwrap(run.stdout.split(separator: "\n").last { $0.hasPrefix("{") }, run.description)
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(json["precision"] as? String, "w4a16")
            XCTAssertEqual(json["quantized_layers"] as? Int, layers.count)
            XCTAssertEqual(json["codes_held"] as? String, "dequantized \(precision)")
            XCTAssertEqual(json["resident_weight_bytes"] as? Int, bytes * parameters + 4 * biases, precision)
        }
        let text = try MixDQCLI.succeed(bench(["--quant", "w8a16"])).stdout
        XCTAssertTrue(text.contains("quantized layers: \(layers.count) (W8: \(layers.count)), attention fp32, weight-only (A16): activations and weights in fp32"), text)
        if Precision.bf16.isAvailable {
            let w8a8 = try MixDQCLI.succeed(bench(["--quant", "w8a8", "--precision", "bf16"])).stdout
            XCTAssertTrue(w8a8.contains("quantized layers: \(layers.count) (W8: \(layers.count)), attention bf16, activations u8"), w8a8)
        }
    }

    /// Element counts of the `.bias` tensors of the given layers, from the fixture's header.
    static func fixtureBiasParameters(_ paths: Set<String>) throws -> Int {
        try fixtureHeader().reduce(0) { sum, entry in
            guard entry.key.hasSuffix(".bias"), paths.contains(String(entry.key.dropLast(".bias".count))),
                  let shape = (entry.value as? [String: Any])?["shape"] as? [Int] else { return sum }
            return sum + shape.reduce(1, *)
        }
    }

    func testBadQuantSpecsAreNamed() throws {
        try MixDQCLI.fail(bench(["--quant", "w8a4"]), mentioning: ["--quant", "'w8a4'"])
        try MixDQCLI.fail(bench(["--quant", "w9a8"]), mentioning: ["--quant", "'w9a8'"])
        try MixDQCLI.fail(bench(["--quant", "w1a16"]), mentioning: ["--quant", "'w1a16'"])
        try MixDQCLI.fail(bench(["--quant", "int8"]), mentioning: ["--quant", "'int8'"])
        if !Precision.bf16.isAvailable { try MixDQCLI.fail(bench(["--quant", "w8a8", "--precision", "bf16"]), mentioning: ["--precision"]) }
        try MixDQCLI.fail(["bench", "unet", "--model", MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny").path, "--quant", "w8a8"],
                          mentioning: ["--quant", "--random-weights"])
    }

    func testBadBitFilesNameTheFileAndLayer() throws {
        let layers = try Self.fixtureLayers()
        let dir = try MixDQCLI.tempDir("bench-mp-bad")
        func file(_ name: String, _ lines: [String]) throws -> String {
            let url = dir.appendingPathComponent(name)
            try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
            return url.path
        }
        let all = layers.map { "model.\($0.path): 8" }

        let missing = dir.appendingPathComponent("absent.yaml").path
        try MixDQCLI.fail(bench(["--quant", missing]), mentioning: [missing, "cannot read"])

        let unknown = try file("unknown.yaml", all + ["model.down_blocks.7.resnets.0.conv9: 8"])
        try MixDQCLI.fail(bench(["--quant", unknown]), mentioning: [unknown, "down_blocks.7.resnets.0.conv9", "unknown layer"])

        let short = try file("short.yaml", Array(all.dropFirst()))
        try MixDQCLI.fail(bench(["--quant", short]), mentioning: [short, layers[0].path])

        let wide = try file("wide.yaml", ["model.\(layers[0].path): 16"] + all.dropFirst())
        try MixDQCLI.fail(bench(["--quant", wide]), mentioning: [wide, layers[0].path, "16-bit"])

        let notBits = try file("text.yaml", ["model.\(layers[0].path): eight"] + all.dropFirst())
        try MixDQCLI.fail(bench(["--quant", notBits]), mentioning: [notBits, layers[0].path])
    }
}
