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
        XCTAssertEqual(bits.values.filter { $0 == 2 }.count, 42)
        XCTAssertEqual(bits.values.filter { $0 == 8 }.count, 93)
    }
}
