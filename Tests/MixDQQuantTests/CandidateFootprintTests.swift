import Foundation
import XCTest
import MixDQQuant

/// `CandidateFootprint`: mean bits and packed model bytes of a candidate, worked out by hand.
final class CandidateFootprintTests: XCTestCase {
    let ratios = LayerRatios(layers: ["a", "b", "c.attn2.to_k"], ratio: ["a": 1, "b": 2, "c.attn2.to_k": 3], source: "ratio.yaml")
    let params = LayerRatios(layers: ["a", "b", "c.attn2.to_k"], ratio: ["a": 100, "b": 40, "c.attn2.to_k": 8], source: "params.yaml")
    let config = BitConfig(bits: ["a": 2, "b": 4, "c.attn2.to_k": 8], source: "weight_x.yaml")

    func testMeanBitsIsRatioWeightedOverTheNamedLayers() throws {
        let expected: Double = (2.0 + 8.0 + 24.0) / 6.0   // ratios 1, 2, 3 at bits 2, 4, 8
        XCTAssertEqual(try CandidateFootprint.meanBits(config, ratios: ratios), expected, accuracy: 1e-12)
        // Protected layers are left out, as the allocation leaves them out of its budget.
        XCTAssertEqual(try CandidateFootprint.meanBits(config, ratios: ratios, excluding: ["b"]), 26.0 / 4.0, accuracy: 1e-12)
        // A config that omits a layer averages over the ones it names.
        let partial = BitConfig(bits: ["a": 2, "c.attn2.to_k": 4], source: "act_x.yaml")
        XCTAssertEqual(try CandidateFootprint.meanBits(partial, ratios: ratios), 14.0 / 4.0, accuracy: 1e-12)
    }

    func testBytesArePackedCodesAndFP32ForFPLayers() throws {
        // 2-bit: 1/4 byte, 4-bit: 1/2, 8-bit: 1 per parameter.
        XCTAssertEqual(try CandidateFootprint.weightBytes(config, parameters: params), 53.0)   // 100/4 + 40/2 + 8
        XCTAssertEqual(try CandidateFootprint.weightBytes(config, parameters: params, fpLayers: ["b"]), 193.0)   // 25 + 40·4 + 8
        // 3 bits is stored as 4, 6 as 8 (the deployable UNet's rest widths).
        let odd = BitConfig(bits: ["a": 3, "b": 6, "c.attn2.to_k": 2], source: "odd.yaml")
        XCTAssertEqual(try CandidateFootprint.weightBytes(odd, parameters: params), 92.0)   // 100/2 + 40 + 8/4
    }

    func testBadInputsNameFileAndLayer() {
        let missing = BitConfig(bits: ["a": 2, "b": 4], source: "weight_missing.yaml")
        XCTAssertThrowsError(try CandidateFootprint.weightBytes(missing, parameters: params)) {
            XCTAssertTrue("\($0)".contains("weight_missing.yaml") && "\($0)".contains("c.attn2.to_k"), "\($0)")
        }
        let wide = BitConfig(bits: ["a": 16, "b": 4, "c.attn2.to_k": 8], source: "wide.yaml")
        XCTAssertThrowsError(try CandidateFootprint.weightBytes(wide, parameters: params)) {
            XCTAssertTrue("\($0)".contains("wide.yaml") && "\($0)".contains("16-bit"), "\($0)")
        }
        let unknown = BitConfig(bits: ["a": 2, "zz": 4], source: "weight_unknown.yaml")
        XCTAssertThrowsError(try CandidateFootprint.meanBits(unknown, ratios: ratios)) {
            XCTAssertTrue("\($0)".contains("ratio.yaml") && "\($0)".contains("zz") && "\($0)".contains("weight_unknown.yaml"), "\($0)")
        }
    }
}
