import Foundation
import XCTest

/// The bit configs shipped in `mixed_precision_configs/` name exactly the layers of the model they
/// were found for, with the mean the README states (ratio-weighted, ratios measured on the model).
final class ShippedConfigsCLITests: XCTestCase {
    func entries(_ url: URL) throws -> [String: Double] {
        var values: [String: Double] = [:]
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") where line.hasPrefix("model.") {
            let parts = line.split(separator: ":", maxSplits: 1)
            values[String(parts[0])] = Double(parts[1].trimmingCharacters(in: .whitespaces))
        }
        return values
    }

    func testTrainedModelsSearchedWeightConfig() throws {
        let dir = try MixDQCLI.tempDir("shipped-configs")
        let ratios = dir.appendingPathComponent("ratio_weight.yaml")
        try MixDQCLI.succeed(["search", "ratios", "--type", "weight", "--out", ratios.path], environment: ["MIXDQ_DEFAULT_MODEL": "trained"])
        let ratio = try entries(ratios)
        let config = MixDQCLI.packageRoot.appendingPathComponent("mixed_precision_configs/trained-tiny-sdxl/weight_3.99.yaml")
        let bits = try entries(config)
        XCTAssertEqual(bits.count, 264)
        XCTAssertEqual(Set(bits.keys), Set(ratio.keys), "the config names other layers than the trained model's")
        XCTAssertTrue(bits.values.allSatisfy { [2, 4, 8].contains($0) })
        let total = ratio.values.reduce(0, +)
        let mean = bits.reduce(0.0) { $0 + $1.value * (ratio[$1.key] ?? .nan) / total }
        print(String(format: "weight_3.99.yaml: ratio-weighted mean %.4f bits", mean))
        XCTAssertEqual(mean, 3.99, accuracy: 0.005)
        XCTAssertEqual(bits.values.filter { $0 == 2 }.count, 45)
        XCTAssertEqual(bits.values.filter { $0 == 8 }.count, 110)
    }

    /// The original's targets (W5, A7.7): the weight file names every layer, the act file every
    /// layer but the 9 of the protect list, at the means the README states (act ratios at 128×128).
    func testTrainedModelsSearchedW5A77Configs() throws {
        let dir = try MixDQCLI.tempDir("shipped-configs-w5")
        let folder = MixDQCLI.packageRoot.appendingPathComponent("mixed_precision_configs/trained-tiny-sdxl")
        var ratios: [String: [String: Double]] = [:]
        for type in ["weight", "act"] {
            let url = dir.appendingPathComponent("ratio_\(type).yaml")
            try MixDQCLI.succeed(["search", "ratios", "--type", type, "--height", "128", "--width", "128", "--out", url.path],
                                 environment: ["MIXDQ_DEFAULT_MODEL": "trained"])
            ratios[type] = try entries(url)
        }
        let protected = try String(contentsOf: folder.appendingPathComponent("act_protect.yaml"), encoding: .utf8)
            .split(separator: "\n").filter { $0.hasPrefix("- ") }.map { String($0.dropFirst(2)) }
        XCTAssertEqual(protected.count, 9)
        for (type, file, mean, layers) in [("weight", "weight_5.02.yaml", 5.02, 264), ("act", "act_7.68.yaml", 7.68, 255)] {
            let bits = try entries(folder.appendingPathComponent(file))
            let ratio = ratios[type] ?? [:]
            XCTAssertEqual(bits.count, layers, file)
            let expected = Set(ratio.keys).subtracting(type == "act" ? Set(protected) : [])
            XCTAssertEqual(Set(bits.keys), expected, "\(file): not the model's layers (less the protected ones for act)")
            let total = bits.keys.reduce(0.0) { $0 + (ratio[$1] ?? .nan) }
            let m = bits.reduce(0.0) { $0 + $1.value * (ratio[$1.key] ?? .nan) / total }
            print(String(format: "%@: ratio-weighted mean %.4f bits", file, m))
            XCTAssertEqual(m, mean, accuracy: 0.005, file)
        }
    }
}
