import Foundation
import XCTest
import MixDQModels

/// The heap-based BPE against the textbook algorithm it replaces (transformers' slow
/// `CLIPTokenizer.bpe`: rescan for the lowest-ranked pair, merge it everywhere, repeat), on the real
/// CLIP merges and on made-up merge tables whose ranks are out of creation order; a 120,000-letter
/// word (minutes before); and vocabulary / merges files that cannot work.
final class BytePairEncodingTests: XCTestCase {
    // MARK: the reference

    /// GPT-2's bytes_to_unicode, written out again here.
    static let byteSymbols: [String] = {
        let printable = Array(33...126) + Array(161...172) + Array(174...255)
        var extra = 0
        return (0..<256).map { b in
            if printable.contains(b) { return String(UnicodeScalar(UInt8(b))) }
            defer { extra += 1 }
            return String(UnicodeScalar(UInt32(256 + extra))!)
        }
    }()

    /// The quadratic reference: BPE symbols of one piece.
    static func referenceSymbols(_ piece: String, ranks: [String: Int]) -> [String] {
        var word = piece.utf8.map { byteSymbols[Int($0)] }
        guard !word.isEmpty else { return [] }
        word[word.count - 1] += "</w>"
        while word.count > 1 {
            var best: (rank: Int, a: String, b: String)? = nil
            for i in 0..<(word.count - 1) {
                if let r = ranks["\(word[i]) \(word[i + 1])"], r < (best?.rank ?? Int.max) { best = (r, word[i], word[i + 1]) }
            }
            guard let (_, a, b) = best else { break }
            var merged: [String] = []
            var i = 0
            while i < word.count {
                if i < word.count - 1, word[i] == a, word[i + 1] == b { merged.append(a + b); i += 2 } else { merged.append(word[i]); i += 1 }
            }
            word = merged
        }
        return word
    }

    static func ranks(_ merges: [(String, String)]) -> [String: Int] {
        var r: [String: Int] = [:]
        for (i, (a, b)) in merges.enumerated() where r["\(a) \(b)"] == nil { r["\(a) \(b)"] = i }
        return r
    }

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-bpe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// Writes vocab.json (symbols numbered in order, then the two special tokens) and merges.txt.
    private func writeFolder(_ dir: URL, symbols: [String], merges: [(String, String)]) throws -> URL {
        var vocab: [String: Int] = [:]
        for s in symbols where vocab[s] == nil { vocab[s] = vocab.count }
        vocab["<|startoftext|>"] = vocab.count
        vocab["<|endoftext|>"] = vocab.count
        try JSONSerialization.data(withJSONObject: vocab, options: [.sortedKeys]).write(to: dir.appendingPathComponent("vocab.json"))
        let text = "#version: 0.2\n" + merges.map { "\($0.0) \($0.1)" }.joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: dir.appendingPathComponent("merges.txt"))
        return dir
    }

    // MARK: equivalence

    func testMatchesTheReferenceOnCLIPMerges() throws {
        let dir = try temporaryDirectory()
        try CLIPTokenizer.writeFolder(to: dir, padToken: "<|endoftext|>")
        let tokenizer = try CLIPTokenizer(folder: dir)
        let text = try String(contentsOf: dir.appendingPathComponent("merges.txt"), encoding: .utf8)
        let merges = text.split(separator: "\n").dropFirst().map { line -> (String, String) in
            let p = line.split(separator: " "); return (String(p[0]), String(p[1]))
        }
        let ranks = Self.ranks(merges)
        // Letters only, so each word is one pre-split piece; common English fragments make long merge chains.
        let fragments = ["tion", "ing", "the", "photo", "cat", "ab", "a", "e", "q", "zz", "ation", "ment", "über", "é", "ß",
                         "写真", "ок", "xyz", "qu", "ll", "ee", "ss", "re", "un"]
        var rng = SplitMix64(state: 7)
        for length in [1, 2, 3, 5, 10, 40, 200, 1500] {
            for _ in 0..<(length > 200 ? 3 : 12) {
                var word = ""
                while word.count < length { word += fragments[rng.below(fragments.count)] }
                let piece = CLIPTextNormalization.transformers.normalize(word)
                let want = Self.referenceSymbols(piece, ranks: ranks)
                XCTAssertEqual(tokenizer.tokens(word), want, "word \(word.prefix(60))")
            }
        }
    }

    /// Made-up merge tables over {a, b, c} whose ranks are shuffled, so merges of merged symbols can
    /// outrank the merges that create them: a heap that merged such a pair as soon as it appeared
    /// would differ from the reference, which merges every occurrence of the best pair first.
    func testMatchesTheReferenceWhenRanksAreOutOfCreationOrder() throws {
        // The smallest such case, by hand: "ab a" outranks "a b". Reference on "ababa":
        // merge both "a b" → [ab, ab, a</w>]; no ranked pair remains.
        let handDir = try temporaryDirectory()
        let handMerges = [("ab", "a"), ("a", "b")]
        let hand = try CLIPTokenizer(folder: try writeFolder(handDir, symbols: ["a", "b", "a</w>", "b</w>", "ab", "aba"], merges: handMerges))
        XCTAssertEqual(hand.tokens("ababa"), ["ab", "ab", "a</w>"])
        XCTAssertEqual(Self.referenceSymbols("ababa", ranks: Self.ranks(handMerges)), ["ab", "ab", "a</w>"])

        var rng = SplitMix64(state: 2024)
        for table in 0..<20 {
            var symbols = ["a", "b", "c", "a</w>", "b</w>", "c</w>"]
            var merges: [(String, String)] = []
            for _ in 0..<40 {
                let left = symbols[rng.below(symbols.count)], right = symbols[rng.below(symbols.count)]
                guard !left.hasSuffix("</w>") else { continue }
                merges.append((left, right))
                symbols.append(left + right)
            }
            for i in stride(from: merges.count - 1, to: 0, by: -1) { merges.swapAt(i, rng.below(i + 1)) }
            let tokenizer = try CLIPTokenizer(folder: try writeFolder(try temporaryDirectory(), symbols: symbols, merges: merges))
            let ranks = Self.ranks(merges)
            for _ in 0..<60 {
                let word = String((0..<(1 + rng.below(48))).map { _ in "abc".randomElement(using: &rng)! })
                XCTAssertEqual(tokenizer.tokens(word), Self.referenceSymbols(word, ranks: ranks), "table \(table), word \(word)")
            }
            // Long runs of one letter: many same-rank, overlapping occurrences.
            for run in [2, 3, 7, 64] {
                let word = String(repeating: "abc".randomElement(using: &rng)!, count: run)
                XCTAssertEqual(tokenizer.tokens(word), Self.referenceSymbols(word, ranks: ranks), "table \(table), run \(word)")
            }
        }
    }

    /// 120,000 letters in one word: the reference rescans the word once per merge (over two minutes);
    /// this must finish in a blink. Checked by content: the tokens spell the word back.
    func testVeryLongWordTokenizesAndSpellsTheWordBack() throws {
        let dir = try temporaryDirectory()
        try CLIPTokenizer.writeFolder(to: dir, padToken: "<|endoftext|>")
        let tokenizer = try CLIPTokenizer(folder: dir)
        var rng = SplitMix64(state: 99)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let random = String((0..<120_000).map { _ in letters[rng.below(letters.count)] })
        // Letters, one repeated letter, a repeated word, and punctuation (also one pre-split piece).
        for word in [random, String(repeating: "a", count: 120_000), String(repeating: "photo", count: 24_000),
                     String(repeating: "!?.", count: 40_000)] {
            let tokens = tokenizer.tokens(word)
            XCTAssertGreaterThan(tokens.count, 0)
            XCTAssertLessThan(tokens.count, word.count, "merges happened")
            XCTAssertFalse(tokens.contains("<|endoftext|>"), "every symbol is in the vocabulary")
            XCTAssertTrue(tokens.last!.hasSuffix("</w>"))
            XCTAssertEqual(tokens.joined().replacingOccurrences(of: "</w>", with: ""), word)
            // encode() truncates to 77 ids with BOS and EOS around the first 75.
            XCTAssertEqual(tokenizer.encode(word).count, 77)
        }
    }

    // MARK: files that cannot work

    func testEmptyVocabularyIsAnErrorNamingTheFile() throws {
        let dir = try temporaryDirectory()
        try CLIPTokenizer.writeFolder(to: dir, padToken: "<|endoftext|>")
        let vocab = dir.appendingPathComponent("vocab.json")
        try Data("{}".utf8).write(to: vocab)
        XCTAssertThrowsError(try CLIPTokenizer(folder: dir)) { error in
            let m = error.localizedDescription
            XCTAssertTrue(m.contains(vocab.path) && m.contains("empty"), m)
        }
        // The same in a tokenizer.json.
        let json = try temporaryDirectory().appendingPathComponent("tokenizer.json")
        try Data(#"{"model": {"type": "BPE", "vocab": {}, "merges": []}}"#.utf8).write(to: json)
        XCTAssertThrowsError(try CLIPTokenizer(folder: json.deletingLastPathComponent())) { error in
            let m = error.localizedDescription
            XCTAssertTrue(m.contains(json.path) && m.contains("empty"), m)
        }
    }

    func testMergeOfUnknownSymbolsIsAnErrorNamingTheFileAndMerge() throws {
        let dir = try temporaryDirectory()
        // "c" is in no vocabulary entry; then "ab" (the result of a b) is missing.
        for (merges, bad) in [([("a", "b"), ("ab", "c")], "\"c\""), ([("a", "b")], "\"ab\"")] {
            let folder = try writeFolder(dir, symbols: ["a", "b", "a</w>", "b</w>"] + (bad == "\"c\"" ? ["ab", "abc"] : []), merges: merges)
            XCTAssertThrowsError(try CLIPTokenizer(folder: folder)) { error in
                let m = error.localizedDescription
                XCTAssertTrue(m.contains(folder.appendingPathComponent("merges.txt").path) && m.contains(bad)
                              && m.contains("merge \(merges.count)"), m)
            }
        }
    }

    func testMissingSpecialTokensAreNamed() throws {
        let dir = try temporaryDirectory()
        var vocab: [String: Int] = [:]
        for (i, s) in ["a", "b", "a</w>", "b</w>", "ab"].enumerated() { vocab[s] = i }
        try JSONSerialization.data(withJSONObject: vocab).write(to: dir.appendingPathComponent("vocab.json"))
        try Data("#version: 0.2\na b\n".utf8).write(to: dir.appendingPathComponent("merges.txt"))
        XCTAssertThrowsError(try CLIPTokenizer(folder: dir)) { error in
            let m = error.localizedDescription
            XCTAssertTrue(m.contains("<|startoftext|>") && m.contains("bos_token") && m.contains(dir.path), m)
        }
    }
}
