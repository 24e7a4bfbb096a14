import Foundation
import XCTest
import MixDQIO
import MixDQCompute

/// A fresh directory per test, removed afterwards.
private func makeTempDir() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-st-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// Writes a safetensors file byte by byte: u64 LE header length, header text, data.
private func craft(_ dir: URL, _ name: String, header: String, data: [UInt8] = [], headerLength: UInt64? = nil) throws -> URL {
    let h = Array(header.utf8)
    var bytes: [UInt8] = []
    withUnsafeBytes(of: (headerLength ?? UInt64(h.count)).littleEndian) { bytes.append(contentsOf: $0) }
    bytes += h + data
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url
}

private func f32Bytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}

/// bf16 round-to-nearest-even, computed independently of the C kernel.
private func bf16Rounded(_ x: Float) -> Float {
    let bits = x.bitPattern
    let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000
    return Float(bitPattern: rounded)
}

final class SafetensorsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try makeTempDir() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Opening `url` must throw a SafetensorsError whose description names the file and `fragments`.
    private func assertOpenFails(_ url: URL, mentions fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(url), file: file, line: line) { error in
            XCTAssertTrue(error is SafetensorsError, "\(type(of: error))", file: file, line: line)
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.lastPathComponent), "'\(text)' does not name the file", file: file, line: line)
            for f in fragments {
                XCTAssertTrue(text.contains(f), "'\(text)' does not contain '\(f)'", file: file, line: line)
            }
            XCTAssertEqual((error as? LocalizedError)?.errorDescription, text, file: file, line: line)
        }
    }

    private let sample: [(String, Tensor)] = [
        ("unet.b.weight", Tensor(shape: [2, 3], values: [1, -2, 3.5, 0, 1e-3, -65504])),
        ("unet.a.bias", Tensor(shape: [3], values: [0.1, 0.2, 0.3])),
        ("scalar", Tensor(shape: [], values: [42])),
        ("empty", Tensor(zeros: [0, 4])),
        ("odd", Tensor(shape: [5], values: [1.0009765625, 3.14159265, -7.77, 1e-8, 70000])),
    ]

    private func assertRoundTrip(_ dtype: SafetensorsDType, expect: (Float) -> Float) throws {
        let url = dir.appendingPathComponent("rt-\(dtype.rawValue).safetensors")
        try SafetensorsWriter.write(sample, dtype: dtype, to: url)
        let f = try SafetensorsFile(url)
        XCTAssertEqual(f.keys, sample.map(\.0).sorted())
        for (name, t) in sample {
            let info = try f.info(name)
            XCTAssertEqual(info.dtype, dtype)
            XCTAssertEqual(info.shape, t.shape)
            let back = try f.floatTensor(name)
            XCTAssertEqual(back.shape, t.shape)
            XCTAssertEqual(back.scalars.map(\.bitPattern), t.scalars.map(expect).map(\.bitPattern), name)
        }
    }

    func testRoundTripF32() throws { try assertRoundTrip(.f32) { $0 } }
    func testRoundTripF16() throws { try assertRoundTrip(.f16) { Float(Float16($0)) } }
    func testRoundTripBF16() throws { try assertRoundTrip(.bf16, expect: bf16Rounded) }

    func testRoundTripLargeTensorSpansChunks() throws {
        let n = SafetensorsWriter.chunkElements * 2 + 17
        let t = Tensor(uninitializedShape: [n])
        for i in 0..<n { t.data[i] = Float(i % 1000) * 0.37 - 100 }
        for dtype in [SafetensorsDType.f32, .f16, .bf16] {
            let url = dir.appendingPathComponent("big-\(dtype.rawValue).safetensors")
            try SafetensorsWriter.write([("w", t)], dtype: dtype, to: url)
            let back = try SafetensorsFile(url).floatTensor("w")
            let expect: (Float) -> Float = dtype == .f32 ? { $0 } : dtype == .f16 ? { Float(Float16($0)) } : bf16Rounded
            for i in stride(from: 0, to: n, by: 997) + [n - 1] {
                XCTAssertEqual(back.data[i], expect(t.data[i]), "\(dtype) element \(i)")
            }
        }
    }

    func testMetadataRoundTripAndEscapedNames() throws {
        let meta = ["format": "pt", "note": "quote \" backslash \\ newline \n tab \t ctrl \u{1} unicode é漢🙂", "": "empty key"]
        let weird = "layer.\"quoted\"\\x.é🙂\u{7}"
        let url = dir.appendingPathComponent("meta.safetensors")
        try SafetensorsWriter.write([(weird, Tensor(shape: [1], values: [2]))], metadata: meta, to: url)
        let f = try SafetensorsFile(url)
        XCTAssertEqual(f.metadata, meta)
        XCTAssertEqual(f.keys, [weird])
        XCTAssertEqual(try f.floatTensor(weird).scalars, [2])
    }

    func testWriterLayoutMatchesReferenceConventions() throws {
        let url = dir.appendingPathComponent("layout.safetensors")
        try SafetensorsWriter.write(sample, metadata: ["k": "v"], to: url)
        let bytes = try Data(contentsOf: url)
        let n = Int(bytes.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        XCTAssertEqual(n % 8, 0, "header padded to a multiple of 8")
        let headerText = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        XCTAssertTrue(headerText.hasSuffix("}") || headerText.hasSuffix(" "))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(headerText.utf8)) as? [String: Any])
        XCTAssertEqual(json["__metadata__"] as? [String: String], ["k": "v"])
        // Offsets are contiguous in sorted-name order and cover the data region exactly.
        var cursor = 0
        for name in sample.map(\.0).sorted() {
            let entry = try XCTUnwrap(json[name] as? [String: Any])
            let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
            XCTAssertEqual(offsets[0], cursor, name)
            cursor = offsets[1]
        }
        XCTAssertEqual(8 + n + cursor, bytes.count)
        // An aligned F32 file yields zero-copy views; `copy: true` yields owned, writable memory.
        let f = try SafetensorsFile(url)
        XCTAssertEqual(f.dataOffset % 8, 0)
        let copied = try f.floatTensor("unet.a.bias", copy: true)
        copied[flat: 0] = 9
        XCTAssertEqual(try f.floatTensor("unet.a.bias").scalars, [0.1, 0.2, 0.3])
    }

    func testHandCraftedFileWithUnalignedDataAndIntBuffer() throws {
        // Header of odd length: the data region starts unaligned, exercising the copy paths.
        let json = #"{"b":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1,1],"data_offsets":[4,8]},"#
            + #""text.position_ids":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},"#
            + #""c":{"dtype":"BF16","shape":[1],"data_offsets":[16,18]},"__metadata__":{"format":"pt"}}"#
        let header = json + (json.utf8.count % 2 == 0 ? " " : "")   // trailing whitespace is valid JSON
        XCTAssertEqual(header.utf8.count % 2, 1)
        var data: [UInt8] = [0x00, 0x3C, 0x00, 0xC0]          // f16 1.0, -2.0
        data += f32Bytes([0.5])
        data += withUnsafeBytes(of: Int64(7).littleEndian) { Array($0) }
        data += [0x40, 0x40]                                   // bf16 3.0
        let url = try craft(dir, "hand.safetensors", header: header, data: data)
        let f = try SafetensorsFile(url)
        XCTAssertEqual(f.keys, ["a", "b", "c", "text.position_ids"])
        XCTAssertEqual(f.metadata, ["format": "pt"])
        XCTAssertEqual(try f.floatTensor("b").scalars, [1, -2])
        XCTAssertEqual(try f.floatTensor("a").scalars, [0.5])
        XCTAssertEqual(try f.floatTensor("a").shape, [1, 1])
        XCTAssertEqual(try f.floatTensor("c").scalars, [3])
        XCTAssertEqual(try f.info("text.position_ids").dtype, .i64)
        XCTAssertEqual(try f.rawBytes("text.position_ids").loadUnaligned(as: Int64.self), 7)
        XCTAssertThrowsError(try f.floatTensor("text.position_ids")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("unsupported dtype"), text)
            XCTAssertTrue(text.contains("text.position_ids") && text.contains("hand.safetensors"), text)
        }
        XCTAssertThrowsError(try f.floatTensor("nope")) { XCTAssertTrue("\($0)".contains("nope")) }
    }

    func testEmptyFileOfTensors() throws {
        let url = dir.appendingPathComponent("none.safetensors")
        try SafetensorsWriter.write([], to: url)
        XCTAssertEqual(try SafetensorsFile(url).keys, [])
    }

    // MARK: bad inputs

    func testTruncatedFile() throws {
        let url = dir.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3, 4, 5]).write(to: url)
        assertOpenFails(url, mentions: ["truncated"])
    }

    func testHeaderLengthPastEndOfFile() throws {
        let url = try craft(dir, "longhdr.safetensors", header: "{}", headerLength: 1000)
        assertOpenFails(url, mentions: ["1000", "past the end"])
    }

    func testInvalidJSON() throws {
        let url = try craft(dir, "badjson.safetensors", header: #"{"w": {"dtype": "F32",}"#)
        assertOpenFails(url, mentions: ["not valid JSON"])
    }

    func testHeaderNotAnObject() throws {
        let url = try craft(dir, "array.safetensors", header: "[1, 2]")
        assertOpenFails(url, mentions: ["not an object"])
    }

    func testUnknownDType() throws {
        let url = try craft(dir, "f99.safetensors", header: #"{"w.weight":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}"#,
                            data: f32Bytes([1]))
        assertOpenFails(url, mentions: ["w.weight", "F99"])
    }

    func testByteCountNotMatchingShape() throws {
        let url = try craft(dir, "count.safetensors", header: #"{"w.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#,
                            data: f32Bytes([1, 2, 3]))
        assertOpenFails(url, mentions: ["w.weight", "16", "12"])
    }

    func testOverlappingOffsets() throws {
        let header = #"{"first":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"second":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let url = try craft(dir, "overlap.safetensors", header: header, data: f32Bytes([1, 2, 3]))
        assertOpenFails(url, mentions: ["second", "overlaps", "first"])
    }

    func testOffsetsOutOfRange() throws {
        let url = try craft(dir, "range.safetensors", header: #"{"w.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                            data: f32Bytes([1, 2]))
        assertOpenFails(url, mentions: ["w.weight", "past the end of the data region"])
    }

    func testEndBeforeBegin() throws {
        let url = try craft(dir, "reversed.safetensors", header: #"{"w.weight":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#,
                            data: f32Bytes([1, 2, 3]))
        assertOpenFails(url, mentions: ["w.weight", "before begin"])
    }

    func testMissingAndIllTypedFields() throws {
        let cases = [
            (#"{"w":{"dtype":"F32","shape":[1]}}"#, "data_offsets"),
            (#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, "dtype"),
            (#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, "shape"),
            (#"{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, "dtype"),
            (#"{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#, "shape"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, "data_offsets"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}"#, "data_offsets"),
            (#"{"w":[1]}"#, "expected an object"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"a":1}}"#, "__metadata__"),
        ]
        for (i, (header, fragment)) in cases.enumerated() {
            let url = try craft(dir, "field\(i).safetensors", header: header, data: f32Bytes([1]))
            assertOpenFails(url, mentions: [fragment])
            if !header.contains("__metadata__") { assertOpenFails(url, mentions: ["'w'"]) }
        }
    }

    func testNegativeAndAbsurdShapes() throws {
        let negative = try craft(dir, "neg.safetensors", header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                                 data: f32Bytes([1]))
        assertOpenFails(negative, mentions: ["'w'", "shape"])
        let fractional = try craft(dir, "frac.safetensors", header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#,
                                   data: f32Bytes([1]))
        assertOpenFails(fractional, mentions: ["'w'", "shape"])
        // Product overflows Int; must not wrap around to the 4 bytes present.
        let huge = try craft(dir, "huge.safetensors",
                             header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,4]}}"#,
                             data: f32Bytes([1]))
        assertOpenFails(huge, mentions: ["'w'", "overflow"])
        let tooBig = try craft(dir, "toobig.safetensors", header: #"{"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#,
                               data: f32Bytes([1]))
        assertOpenFails(tooBig, mentions: ["'w'", "shape"])
    }

    func testHolesAndTrailingBytesAreRejected() throws {
        let hole = try craft(dir, "hole.safetensors", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                             data: f32Bytes([1, 2]))
        assertOpenFails(hole, mentions: ["'w'", "hole"])
        let trailing = try craft(dir, "trail.safetensors", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                                 data: f32Bytes([1, 2]))
        assertOpenFails(trailing, mentions: ["'w'", "unindexed"])
    }

    func testDuplicateKeyInHeader() throws {
        let url = try craft(dir, "dup.safetensors",
                            header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                            data: f32Bytes([1, 2]))
        assertOpenFails(url, mentions: ["'w'", "more than once"])
    }

    func testWriterRejectsDuplicateNamesAndNonFloatDType() throws {
        let url = dir.appendingPathComponent("dupw.safetensors")
        let t = Tensor(shape: [1], values: [1])
        XCTAssertThrowsError(try SafetensorsWriter.write([("x", t), ("x", t)], to: url)) { XCTAssertTrue("\($0)".contains("'x'")) }
        XCTAssertThrowsError(try SafetensorsWriter.write([("x", t)], dtype: .i64, to: url)) { XCTAssertTrue("\($0)".contains("I64")) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
    }
}

final class SafetensorsWeightSourceTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try makeTempDir() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func writeModel(_ name: String = "model.safetensors", _ tensors: [(String, Tensor)]? = nil) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try SafetensorsWriter.write(tensors ?? [
            ("conv.weight", Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])),
            ("conv.bias", Tensor(shape: [2], values: [7, 8])),
            ("text.position_ids", Tensor(shape: [1, 4], values: [0, 1, 2, 3])),
        ], to: url)
        return url
    }

    func testLoadsAndFinishesWhenEverythingIsUsed() throws {
        let src = try SafetensorsWeightSource(file: writeModel(), ignoredKeyPatterns: ["position_ids"])
        XCTAssertEqual(try src.tensor("conv.weight", shape: [2, 3]).scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try src.tensor("conv.bias", shape: [2]).scalars, [7, 8])
        XCTAssertTrue(src.contains("text.position_ids"))
        XCTAssertFalse(src.contains("nope"))
        XCTAssertNoThrow(try src.finish())
    }

    func testMissingKey() throws {
        let url = try writeModel()
        let src = try SafetensorsWeightSource(file: url)
        XCTAssertThrowsError(try src.tensor("conv.gamma", shape: [2])) { error in
            XCTAssertEqual(error as? WeightError, .missing(key: "conv.gamma", file: url.path))
            XCTAssertTrue("\(error)".contains("conv.gamma") && "\(error)".contains("model.safetensors"))
        }
    }

    func testShapeMismatchNamesBothShapes() throws {
        let src = try SafetensorsWeightSource(file: writeModel())
        XCTAssertThrowsError(try src.tensor("conv.weight", shape: [3, 2])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("conv.weight"), text)
            XCTAssertTrue(text.contains("[2, 3]") && text.contains("[3, 2]"), text)
            XCTAssertTrue(text.contains("model.safetensors"), text)
        }
    }

    func testUnexpectedKeysAfterFinish() throws {
        let url = try writeModel()
        let src = try SafetensorsWeightSource(file: url, ignoredKeyPatterns: ["position_ids"])
        _ = try src.tensor("conv.weight", shape: [2, 3])
        XCTAssertEqual(src.unusedKeys, ["conv.bias"])
        XCTAssertThrowsError(try src.finish()) { error in
            XCTAssertEqual(error as? WeightError, .unexpected(keys: ["conv.bias"], file: url.path))
        }
        let strict = try SafetensorsWeightSource(file: url)
        XCTAssertThrowsError(try strict.finish()) { error in
            XCTAssertEqual(error as? WeightError, .unexpected(keys: ["conv.bias", "conv.weight", "text.position_ids"], file: url.path))
        }
    }

    func testShardedIndexFolder() throws {
        let folder = dir.appendingPathComponent("unet")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try SafetensorsWriter.write([("down.0.weight", Tensor(shape: [2], values: [1, 2]))],
                                    to: folder.appendingPathComponent("diffusion_pytorch_model-00001-of-00002.safetensors"))
        try SafetensorsWriter.write([("up.0.weight", Tensor(shape: [1, 2], values: [3, 4])), ("up.0.bias", Tensor(shape: [1], values: [5]))],
                                    dtype: .f16, to: folder.appendingPathComponent("diffusion_pytorch_model-00002-of-00002.safetensors"))
        let index = """
        {"metadata": {"total_size": 14}, "weight_map": {
          "down.0.weight": "diffusion_pytorch_model-00001-of-00002.safetensors",
          "up.0.weight": "diffusion_pytorch_model-00002-of-00002.safetensors",
          "up.0.bias": "diffusion_pytorch_model-00002-of-00002.safetensors"}}
        """
        let indexURL = folder.appendingPathComponent("diffusion_pytorch_model.safetensors.index.json")
        try Data(index.utf8).write(to: indexURL)

        let src = try SafetensorsWeightSource.open(folder: folder)
        XCTAssertEqual(src.files.count, 2)
        XCTAssertEqual(src.keys, ["down.0.weight", "up.0.bias", "up.0.weight"])
        XCTAssertEqual(try src.tensor("down.0.weight", shape: [2]).scalars, [1, 2])
        XCTAssertEqual(try src.tensor("up.0.weight", shape: [1, 2]).scalars, [3, 4])
        XCTAssertThrowsError(try src.finish()) { XCTAssertTrue("\($0)".contains("up.0.bias")) }
        _ = try src.tensor("up.0.bias", shape: [1])
        XCTAssertNoThrow(try src.finish())
        XCTAssertThrowsError(try src.tensor("mid.weight", shape: [1])) { XCTAssertTrue("\($0)".contains(indexURL.path)) }

        // An index that places a key in the wrong shard is rejected, naming the key.
        let wrong = index.replacingOccurrences(of: #""up.0.bias": "diffusion_pytorch_model-00002"#,
                                               with: #""up.0.bias": "diffusion_pytorch_model-00001"#)
        try Data(wrong.utf8).write(to: indexURL)
        XCTAssertThrowsError(try SafetensorsWeightSource.open(folder: folder)) { error in
            XCTAssertTrue("\(error)".contains("up.0.bias") && "\(error)".contains("index.json"), "\(error)")
        }
    }

    func testOpenFolderPrefersSingleFileAndReportsNone() throws {
        let folder = dir.appendingPathComponent("text_encoder")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        XCTAssertThrowsError(try SafetensorsWeightSource.open(folder: folder)) { error in
            XCTAssertTrue("\(error)".contains(folder.path) && "\(error)".contains("model.safetensors"), "\(error)")
        }
        try SafetensorsWriter.write([("fp16", Tensor(shape: [1], values: [1]))], dtype: .f16,
                                    to: folder.appendingPathComponent("model.fp16.safetensors"))
        XCTAssertEqual(try SafetensorsWeightSource.open(folder: folder).keys, ["fp16"])
        try SafetensorsWriter.write([("full", Tensor(shape: [1], values: [1]))], to: folder.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(try SafetensorsWeightSource.open(folder: folder).keys, ["full"])
    }

    func testDuplicateKeyAcrossShards() throws {
        let a = try writeModel("a.safetensors", [("x", Tensor(shape: [1], values: [1]))])
        let b = try writeModel("b.safetensors", [("x", Tensor(shape: [1], values: [2]))])
        XCTAssertThrowsError(try SafetensorsWeightSource(files: [a, b])) { XCTAssertTrue("\($0)".contains("'x'")) }
    }
}

final class SafetensorsAtomicFileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try makeTempDir() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func leftovers(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.contains(".tmp-") }
    }

    func testCreatesMissingParentDirectoriesAndReplacesAtomically() throws {
        let url = dir.appendingPathComponent("a/b/c/out.bin")
        try AtomicFile.write(Data([1, 2, 3]), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data([1, 2, 3]))
        try AtomicFile.write(to: url) { h in
            try h.write(contentsOf: Data([4]))
            try h.write(contentsOf: Data([5, 6]))
        }
        XCTAssertEqual(try Data(contentsOf: url), Data([4, 5, 6]))
        XCTAssertEqual(leftovers(url.deletingLastPathComponent()), [])
    }

    func testPathUnderARegularFileThrowsNamingThePath() throws {
        let plain = dir.appendingPathComponent("plain")
        try Data([0]).write(to: plain)
        var targets = [plain.appendingPathComponent("x.safetensors")]
        if FileManager.default.fileExists(atPath: "/etc/hostname") {
            targets.append(URL(fileURLWithPath: "/etc/hostname/x.safetensors"))
        }
        for url in targets {
            XCTAssertThrowsError(try AtomicFile.write(Data([1]), to: url)) { error in
                XCTAssertTrue(error is IOError)
                XCTAssertTrue("\(error)".contains(url.path), "\(error)")
            }
            XCTAssertThrowsError(try SafetensorsWriter.write([("w", Tensor(shape: [1], values: [1]))], to: url)) { error in
                XCTAssertTrue("\(error)".contains(url.path), "\(error)")
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["plain"])
    }

    func testUnwritableDirectoryThrowsNamingThePath() throws {
        // /proc refuses new files even for root, unlike a chmod'ed directory.
        guard FileManager.default.fileExists(atPath: "/proc/self") else { throw XCTSkip("no /proc") }
        let url = URL(fileURLWithPath: "/proc/mixdq-\(UUID().uuidString).safetensors")
        XCTAssertThrowsError(try AtomicFile.write(Data([1]), to: url)) { error in
            XCTAssertEqual((error as? IOError)?.path, url.path)
            XCTAssertTrue("\(error)".contains(url.path), "\(error)")
        }
    }

    func testFailureMidWriteLeavesNoFileBehind() throws {
        struct Boom: Error {}
        let url = dir.appendingPathComponent("partial.safetensors")
        XCTAssertThrowsError(try AtomicFile.write(to: url) { h in
            try h.write(contentsOf: Data(repeating: 7, count: 1000))
            throw Boom()
        }) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])

        // An existing file survives a failed rewrite untouched.
        try AtomicFile.write(Data([1]), to: url)
        XCTAssertThrowsError(try AtomicFile.write(to: url) { _ in throw Boom() })
        XCTAssertEqual(try Data(contentsOf: url), Data([1]))
        XCTAssertEqual(leftovers(dir), [])
    }

    func testRenameOntoADirectoryFailsAndCleansUp() throws {
        let target = dir.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: target.appendingPathComponent("child"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try AtomicFile.write(Data([1]), to: target)) { error in
            XCTAssertTrue("\(error)".contains(target.path), "\(error)")
        }
        XCTAssertEqual(leftovers(dir), [])
    }
}
