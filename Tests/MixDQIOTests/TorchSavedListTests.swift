import Foundation
import MixDQIO
import XCTest

/// The strict reader of torch.save'd lists of layer names (the original's act_sensitivie_a8_1%.pt).
/// Fixtures: scripts/reference/make_original_artefact_fixtures.py wrote each .pt with torch.save and
/// the list it saved as JSON beside it.
final class TorchSavedListTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/original")

    func expected(_ name: String) throws -> [String] {
        let url = Self.fixtures.appendingPathComponent(name)
        return try JSONDecoder().decode([String].self, from: Data(contentsOf: url))
    }

    func testOriginalActProtectListEqualsWhatTorchSaved() throws {
        let names = try TorchSavedList.read(Self.fixtures.appendingPathComponent("act_sensitivie_a8_1%.pt"))
        XCTAssertEqual(names, try expected("act_sensitivie_a8_1%.json"))
        XCTAssertEqual(names.count, 9)
        XCTAssertEqual(names.first, "model.down_blocks.2.attentions.1.transformer_blocks.5.ff.net.2")
    }

    /// pickle_protocol=4 (FRAME, SHORT_BINUNICODE, MEMOIZE) and a string object stored twice (BINGET).
    func testProtocol4AndMemoReferences() throws {
        for name in ["list_protocol4", "list_repeated"] {
            XCTAssertEqual(try TorchSavedList.read(Self.fixtures.appendingPathComponent("\(name).pt")), try expected("\(name).json"), name)
        }
    }

    /// Each hostile file says what it holds instead of a list of strings, and names the file.
    func testHostileFilesSayWhatTheyHold() throws {
        let cases: [(String, String)] = [
            ("dict.pt", "holds a dict"), ("ints.pt", "holds an integer"), ("tensor.pt", "holds tensor data"),
            ("nested.pt", "nested lists"), ("tuple.pt", "holds a tuple"), ("none_in_list.pt", "holds None"),
            ("legacy.pt", "legacy (non-zip) format"),
        ]
        for (file, message) in cases {
            let url = Self.fixtures.appendingPathComponent("hostile/\(file)")
            XCTAssertThrowsError(try TorchSavedList.read(url), file) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(url.path), "\(file): \(text)")
                XCTAssertTrue(text.contains(message), "\(file): expected '\(message)' in: \(text)")
            }
        }
    }

    func testDamagedArchivesAreErrors() throws {
        let good = try Data(contentsOf: Self.fixtures.appendingPathComponent("act_sensitivie_a8_1%.pt"))
        // A changed byte inside the stored pickle: the entry's CRC32 no longer matches.
        let name = Data("model.conv_out".utf8)
        let at = try XCTUnwrap(good.range(of: name))
        var corrupt = good
        corrupt[at.lowerBound] = UInt8(ascii: "M")
        // torch.save writes ZIP64 end records; an offset past Int64.max there trapped ZIPFoundation.
        var zip64 = good
        let record = try XCTUnwrap(good.range(of: Data([0x50, 0x4B, 0x06, 0x06]))).lowerBound
        for i in 48..<56 { zip64[record + i] = 0xFF }
        let cases: [(String, Data, String)] = [
            ("zip64-offset", zip64, "past the end of the file"),
            ("truncated", good.prefix(good.count / 2), "damaged zip archive"),
            ("crc", corrupt, "damaged"),
            ("text", Data("- model.conv_in\n".utf8), "not a zip archive"),
            ("empty", Data(), "an empty file"),
            ("no-central-directory", good.prefix(200), "damaged zip archive"),
        ]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("torch-lists-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (label, data, message) in cases {
            let url = dir.appendingPathComponent("\(label).pt")
            try data.write(to: url)
            XCTAssertThrowsError(try TorchSavedList.read(url), label) { error in
                XCTAssertTrue("\(error)".contains(url.path), "\(label): \(error)")
                XCTAssertTrue("\(error)".contains(message), "\(label): expected '\(message)' in: \(error)")
            }
        }
    }

    // MARK: The pickle opcodes, byte by byte

    /// PROTO 2, EMPTY_LIST, BINPUT 0, MARK, BINUNICODE "a" ..., APPENDS, STOP: torch.save's bytes.
    static func pickle(_ strings: [String], tail: [UInt8] = [0x65, 0x2E]) -> Data {
        var b: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0x00, 0x28]
        for s in strings {
            let u = Array(s.utf8)
            b += [0x58] + withUnsafeBytes(of: UInt32(u.count).littleEndian, Array.init) + u
        }
        return Data(b + tail)
    }

    func testPickleOfStringsReads() throws {
        XCTAssertEqual(try PickledStringList.parse(Self.pickle(["model.conv_in", "ü"]), source: "p"), ["model.conv_in", "ü"])
        // One element: APPEND instead of MARK ... APPENDS; an empty list: no append at all.
        let one = Data([0x80, 0x02, 0x5D, 0x71, 0x00, 0x58, 1, 0, 0, 0, 0x61, 0x71, 0x01, 0x61, 0x2E])
        XCTAssertEqual(try PickledStringList.parse(one, source: "p"), ["a"])
        XCTAssertEqual(try PickledStringList.parse(Data([0x80, 0x02, 0x5D, 0x71, 0x00, 0x2E]), source: "p"), [])
    }

    func testPickleRejectsWhatAListOfStringsCannotHold() {
        let cases: [(String, Data, String)] = [
            ("trailing", Self.pickle(["a"], tail: [0x65, 0x2E, 0x00]), "1 byte(s) after the STOP"),
            ("no stop", Self.pickle(["a"], tail: [0x65]), "without a STOP"),
            ("utf8", Data([0x80, 0x02, 0x5D, 0x28, 0x58, 1, 0, 0, 0, 0xFF, 0x65, 0x2E]), "not valid UTF-8"),
            ("length", Data([0x80, 0x02, 0x5D, 0x28, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x61]), "truncated"),
            ("protocol 1", Data([0x80, 0x01, 0x5D, 0x2E]), "pickle protocol 1"),
            ("no header", Data([0x5D, 0x2E]), "no pickle protocol header"),
            ("global", Data([0x80, 0x02, 0x63]), "refers to a Python class"),
            ("persistent id", Data([0x80, 0x02, 0x5D, 0x28, 0x51]), "persistent id"),
            ("string alone", Data([0x80, 0x02, 0x58, 1, 0, 0, 0, 0x61, 0x2E]), "a single string"),
            ("list by reference", Data([0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2E]), "a list inside itself"),
            ("unknown memo", Data([0x80, 0x02, 0x5D, 0x68, 0x07, 0x61, 0x2E]), "memo index 7"),
            ("appends without mark", Data([0x80, 0x02, 0x5D, 0x58, 1, 0, 0, 0, 0x61, 0x65, 0x2E]), "without a list and a MARK"),
            ("unknown opcode", Data([0x80, 0x02, 0x5D, 0xFE]), "opcode 0xFE"),
        ]
        for (label, data, message) in cases {
            XCTAssertThrowsError(try PickledStringList.parse(data, source: "f.pt"), label) { error in
                XCTAssertTrue("\(error)".hasPrefix("f.pt: "), "\(label): \(error)")
                XCTAssertTrue("\(error)".contains(message), "\(label): expected '\(message)' in: \(error)")
            }
        }
    }
}
