import Foundation
import XCTest
import MixDQIO
import MixDQCompute

/// A weight holding NaN or ±Inf is refused as it loads, with the file, the key and the first bad
/// value named; in every stored dtype, and when only the conversion to float32 overflows.
final class NonFiniteWeightTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-nonfinite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func assertNonFinite(_ source: SafetensorsWeightSource, key: String, shape: [Int], file: URL, count: Int, firstIndex: Int,
                         line: UInt = #line) {
        XCTAssertThrowsError(try source.tensor(key, shape: shape), line: line) { error in
            guard let e = error as? NonFiniteTensorError else { return XCTFail("unexpected error \(error)", line: line) }
            XCTAssertEqual(e.file, file.path, line: line)
            XCTAssertEqual(e.key, key, line: line)
            XCTAssertEqual(e.count, count, line: line)
            XCTAssertEqual(e.firstIndex, firstIndex, line: line)
            let message = error.localizedDescription
            for part in [file.path, "'\(key)'", "non-finite", "index \(firstIndex)"] {
                XCTAssertTrue(message.contains(part), "'\(message)' should mention \(part)", line: line)
            }
        }
    }

    func testNaNOrInfInAnyStoredDTypeNamesFileAndKey() throws {
        // 37 values: past one AVX-512 vector and into a tail, bad values at 19 and 36.
        var values = (0..<37).map { Float($0) * 0.25 - 4 }
        values[19] = .nan
        values[36] = -.infinity
        for dtype in [SafetensorsDType.f32, .f16, .bf16] {
            let url = dir.appendingPathComponent("model-\(dtype.rawValue).safetensors")
            try SafetensorsWriter.write([("good.weight", Tensor(shape: [37], values: (0..<37).map(Float.init))),
                                         ("bad.weight", Tensor(shape: [37], values: values))], dtype: dtype, to: url)
            let source = try SafetensorsWeightSource(file: url)
            XCTAssertEqual(try source.tensor("good.weight", shape: [37]).count, 37, "finite tensors still load")
            assertNonFinite(source, key: "bad.weight", shape: [37], file: url, count: 2, firstIndex: 19)
        }
    }

    /// A float64 value beyond float32's range becomes +Inf only in the conversion: still refused.
    func testFloat64OverflowingFloat32IsRefused() throws {
        let doubles: [Double] = [1, -2, 1e300, 4]
        var body = Data()
        for d in doubles { withUnsafeBytes(of: d.bitPattern.littleEndian) { body.append(contentsOf: $0) } }
        var header = Data("{\"w\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[0,32]}}".utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(header)
        file.append(body)
        let url = dir.appendingPathComponent("f64.safetensors")
        try file.write(to: url)
        assertNonFinite(try SafetensorsWeightSource(file: url), key: "w", shape: [4], file: url, count: 1, firstIndex: 2)
    }

    /// The check runs on every element: a single NaN deep in a large tensor is found.
    func testSingleNaNInALargeTensor() throws {
        let n = 1 << 20
        let t = Tensor(zeros: [n])
        t.data[n - 3] = .nan
        let url = dir.appendingPathComponent("large.safetensors")
        try SafetensorsWriter.write([("big", t)], to: url)
        assertNonFinite(try SafetensorsWeightSource(file: url), key: "big", shape: [n], file: url, count: 1, firstIndex: n - 3)
    }
}
