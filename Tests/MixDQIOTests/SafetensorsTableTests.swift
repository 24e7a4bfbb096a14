import Foundation
import XCTest
import MixDQIO

/// `SafetensorsFile.readTable`, the in-memory validation the safetensors fuzz target drives.
final class SafetensorsTableTests: XCTestCase {
    private func image(header: String, data: [UInt8] = []) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data
    }

    private func table(_ bytes: [UInt8]) throws -> SafetensorsFile.Table {
        try bytes.withUnsafeBytes { try SafetensorsFile.readTable($0, path: "mem.safetensors") }
    }

    func testReadsTheSameTableAsOpeningTheFile() throws {
        let bytes = image(header: #"{"__metadata__":{"k":"v"},"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                          data: Array(repeating: 0, count: 8))
        let t = try table(bytes)
        XCTAssertEqual(t.metadata, ["k": "v"])
        XCTAssertEqual(t.dataOffset, bytes.count - 8)
        XCTAssertEqual(t.entries["a"]?.shape, [1])
        XCTAssertEqual(t.entries["b"].map { [$0.begin, $0.end] }, [4, 8])
        XCTAssertEqual(t.entries["b"]?.dtype, .f16)

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-table-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(bytes).write(to: url)
        let file = try SafetensorsFile(url)
        XCTAssertEqual(file.keys, ["a", "b"])
        XCTAssertEqual(file.dataOffset, t.dataOffset)
        XCTAssertEqual(try file.info("b").shape, [2])
    }

    func testShortImageIsTruncated() {
        XCTAssertThrowsError(try table([1, 2, 3])) { error in
            XCTAssertEqual(error as? SafetensorsError, .truncated(path: "mem.safetensors", size: 3))
        }
        XCTAssertThrowsError(try table([])) { error in
            XCTAssertEqual(error as? SafetensorsError, .truncated(path: "mem.safetensors", size: 0))
        }
    }

    func testZeroDimensionDoesNotHideAnOverflowingShape() throws {
        // 2^40 x 0 x 2^40 holds no bytes, but 2^40 x 2^40 overflows wherever a consumer multiplies
        // the other dimensions, so the shape is refused where it enters.
        let bad = image(header: #"{"w":{"dtype":"F32","shape":[1099511627776,0,1099511627776],"data_offsets":[0,0]}}"#)
        XCTAssertThrowsError(try table(bad)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("'w'") && text.contains("overflow") && text.contains("mem.safetensors"), text)
        }
        // A zero dimension next to dimensions whose product fits is a valid empty tensor.
        let ok = image(header: #"{"w":{"dtype":"F32","shape":[1099511627776,0,4],"data_offsets":[0,0]}}"#)
        XCTAssertEqual(try table(ok).entries["w"]?.shape, [1 << 40, 0, 4])
    }
}
