import Foundation
import XCTest
import MixDQModels

/// Goldens: Tests/Fixtures/tokenizer/goldens.json from scripts/reference/make_tokenizer_fixtures.py
/// (transformers 5.24 `CLIPTokenizer`, the tokenizers-backed fast class, on folders rebuilt from
/// open_clip's merges exactly like `CLIPTokenizer.writeFolder` writes them).
final class TokenizerTests: XCTestCase {
    struct Case: Decodable {
        let prompt: String
        let tokenizer: [Int32]
        let tokenizer_2: [Int32]
    }

    struct Goldens: Decodable {
        let producer: String
        let cases: [Case]
    }

    private static let goldens: Goldens = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/tokenizer/goldens.json").standardizedFileURL
        return try! JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
    }()

    /// Both SDXL tokenizer folders, written once from assets/clip-bpe.
    private static let folders: (one: URL, two: URL) = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-tok-\(UUID().uuidString)")
        let one = root.appendingPathComponent("tokenizer"), two = root.appendingPathComponent("tokenizer_2")
        try! CLIPTokenizer.writeFolder(to: one, padToken: "<|endoftext|>")
        try! CLIPTokenizer.writeFolder(to: two, padToken: "!")
        return (one, two)
    }()
    private static let tokenizer1 = try! CLIPTokenizer(folder: folders.one)
    private static let tokenizer2 = try! CLIPTokenizer(folder: folders.two)

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    // MARK: goldens

    func testMatchesTransformersGoldensForBothTokenizers() {
        XCTAssertTrue(Self.goldens.producer.contains("transformers 5"), Self.goldens.producer)
        XCTAssertEqual(Self.goldens.cases.count, 16)
        for c in Self.goldens.cases {
            XCTAssertEqual(Self.tokenizer1.encode(c.prompt), c.tokenizer, "tokenizer: \(c.prompt.debugDescription)")
            XCTAssertEqual(Self.tokenizer2.encode(c.prompt), c.tokenizer_2, "tokenizer_2: \(c.prompt.debugDescription)")
        }
    }

    func testSpecialIDsAndPadding() {
        let t1 = Self.tokenizer1, t2 = Self.tokenizer2
        XCTAssertEqual([t1.bosID, t1.eosID, t1.padID, t1.unknownID], [49406, 49407, 49407, 49407])
        XCTAssertEqual([t2.bosID, t2.eosID, t2.padID], [49406, 49407, 0])
        XCTAssertEqual(t1.maxLength, 77)
        XCTAssertEqual(Array(t1.encode("a photo of a cat").prefix(8)), [49406, 320, 1125, 539, 320, 2368, 49407, 49407])
        XCTAssertEqual(t2.encode(""), [49406, 49407] + [Int32](repeating: 0, count: 75))
        // §4.4: "!" is an added special token in tokenizer_2 only
        XCTAssertEqual(Array(t1.encode("hello!! world").prefix(5)), [49406, 3306, 748, 1002, 49407])
        XCTAssertEqual(Array(t2.encode("hello!! world").prefix(6)), [49406, 3306, 0, 0, 1002, 49407])
        XCTAssertEqual(t1.tokens("wow!"), ["wow</w>", "!</w>"])
    }

    func testTruncationKeepsFirst75ContentTokens() {
        let prompt = Array(repeating: "cat", count: 200).joined(separator: " ")
        let ids = Self.tokenizer1.encode(prompt)
        XCTAssertEqual(ids.count, 77)
        XCTAssertEqual(ids.first, 49406)
        XCTAssertEqual(ids.last, 49407)
        XCTAssertEqual(Set(ids[1..<76]), [2368])
        XCTAssertEqual(Self.tokenizer1.encode(batch: ["a", "b"]).count, 154)
    }

    func testBasicTokenizerNormalizationSplitsIdeographs() throws {
        // The slow (transformers 4.x, no ftfy) cleaning puts spaces around CJK ideographs but not kana.
        let slow = try CLIPTokenizer(folder: Self.folders.one, normalization: .basicTokenizer)
        XCTAssertEqual(slow.encode("東京タワー"), Self.tokenizer1.encode("東 京 タワー"))
        XCTAssertNotEqual(slow.encode("東京タワー"), Self.tokenizer1.encode("東京タワー"))
        XCTAssertEqual(slow.encode("a\u{0}b\u{200B}c"), Self.tokenizer1.encode("abc"))
        for c in Self.goldens.cases where !c.prompt.unicodeScalars.contains(where: { (0x4E00...0x9FFF).contains($0.value) }) {
            XCTAssertEqual(slow.encode(c.prompt), c.tokenizer, "slow-normalised \(c.prompt.debugDescription)")
        }
    }

    // MARK: files

    func testRebuiltVocabularyIsTheOpenAIOne() throws {
        let files = try CLIPTokenizerFiles.load(folder: Self.folders.one)
        XCTAssertEqual(files.vocab.count, 49408)
        XCTAssertEqual(files.merges.count, 48894)
        XCTAssertEqual(files.vocab["!"], 0)
        XCTAssertEqual(files.vocab["a</w>"], 320)
        XCTAssertEqual(files.vocab["<|startoftext|>"], 49406)
        XCTAssertEqual(files.vocab["<|endoftext|>"], 49407)
        XCTAssertEqual(files.merges.first.map { "\($0.0) \($0.1)" }, "i n")
        // ids 512... are the merges concatenated in order
        XCTAssertEqual(files.vocab["in"], 512)
    }

    func testWrittenFoldersHaveTheSDXLTurboLayout() throws {
        let fm = FileManager.default
        for name in ["vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"] {
            XCTAssertTrue(fm.fileExists(atPath: Self.folders.one.appendingPathComponent(name).path), name)
        }
        // sdxl-architecture.md §1.6: the official tokenizer/tokenizer_config.json is 704 bytes
        let config1 = try Data(contentsOf: Self.folders.one.appendingPathComponent("tokenizer_config.json"))
        XCTAssertEqual(config1.count, 704)
        let config2 = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folders.two.appendingPathComponent("tokenizer_config.json"))) as! [String: Any]
        XCTAssertEqual(config2["pad_token"] as? String, "!")
        let decoder = config2["added_tokens_decoder"] as! [String: [String: Any]]
        XCTAssertEqual(decoder["0"]?["content"] as? String, "!")
        XCTAssertEqual(decoder["0"]?["normalized"] as? Bool, false)
        let map2 = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folders.two.appendingPathComponent("special_tokens_map.json"))) as! [String: Any]
        XCTAssertEqual((map2["pad_token"] as? [String: Any])?["content"] as? String, "!")
    }

    /// transformers 5 saves only tokenizer.json; merges may be "a b" strings or [a, b] pairs.
    func testLoadsTransformers5TokenizerJSON() throws {
        let files = try CLIPTokenizerFiles.load(folder: Self.folders.two)
        let vocab = files.vocab.mapValues { Int($0) }
        for (style, padInConfig) in [("strings", true), ("pairs", false)] {
            let dir = try temporaryDirectory()
            let merges: [Any] = style == "strings" ? files.merges.map { "\($0.0) \($0.1)" } : files.merges.map { [$0.0, $0.1] }
            let root: [String: Any] = [
                "version": "1.0",
                "added_tokens": [
                    ["id": 0, "content": "!", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true],
                    ["id": 49406, "content": "<|startoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true],
                    ["id": 49407, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true],
                ],
                "padding": padInConfig ? NSNull() : ["pad_id": 0, "pad_token": "!"] as [String: Any],
                "post_processor": ["type": "RobertaProcessing", "sep": ["<|endoftext|>", 49407], "cls": ["<|startoftext|>", 49406]],
                "model": ["type": "BPE", "unk_token": "<|endoftext|>", "end_of_word_suffix": "</w>", "vocab": vocab, "merges": merges],
            ]
            try JSONSerialization.data(withJSONObject: root).write(to: dir.appendingPathComponent("tokenizer.json"))
            if padInConfig {
                let config = #"{"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "model_max_length": 77, "pad_token": {"content": "!", "normalized": false}, "unk_token": "<|endoftext|>"}"#
                try Data(config.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
            }
            let t = try CLIPTokenizer(folder: dir)
            XCTAssertEqual(t.padID, 0, style)
            for c in Self.goldens.cases.prefix(6) {
                XCTAssertEqual(t.encode(c.prompt), c.tokenizer_2, "\(style): \(c.prompt.debugDescription)")
            }
        }
    }

    func testBadInputNamesThePath() throws {
        func assertError(_ body: @autoclosure () throws -> Any, mentions path: String, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { error in
                XCTAssertTrue("\(error)".contains(path), "\(error) does not name \(path)", line: line)
            }
        }
        let missing = URL(fileURLWithPath: "/nonexistent/tokenizer")
        assertError(try CLIPTokenizer(folder: missing), mentions: missing.path)

        let dir = try temporaryDirectory()
        assertError(try CLIPTokenizer(folder: dir), mentions: dir.appendingPathComponent("vocab.json").path)

        try Data("not json".utf8).write(to: dir.appendingPathComponent("vocab.json"))
        try Data("#version: 0.2\ni n\n".utf8).write(to: dir.appendingPathComponent("merges.txt"))
        assertError(try CLIPTokenizer(folder: dir), mentions: dir.appendingPathComponent("vocab.json").path)

        try Data(#"{"i": 0, "n": 1, "in": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}"#.utf8).write(to: dir.appendingPathComponent("vocab.json"))
        try Data("#version: 0.2\ni n\nthree tokens here\n".utf8).write(to: dir.appendingPathComponent("merges.txt"))
        assertError(try CLIPTokenizer(folder: dir), mentions: dir.appendingPathComponent("merges.txt").path)

        try Data("#version: 0.2\ni n\n".utf8).write(to: dir.appendingPathComponent("merges.txt"))
        try Data(#"{"pad_token": "<|pad|>"}"#.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        assertError(try CLIPTokenizer(folder: dir), mentions: "<|pad|>")
    }

    func testBundledAssetsFolderHonoursEnvironment() throws {
        let found = try CLIPTokenizer.bundledAssetsFolder()
        XCTAssertTrue(FileManager.default.fileExists(atPath: found.appendingPathComponent("vocab.json").path))
        let viaEnv = try CLIPTokenizer.bundledAssetsFolder(environment: ["MIXDQ_ASSETS": found.deletingLastPathComponent().path])
        XCTAssertEqual(viaEnv.standardizedFileURL.path, found.standardizedFileURL.path)
    }
}
