import Foundation

/// GPT-2 style byte-level BPE with CLIP's `</w>` end-of-word marker (sdxl-architecture.md §4.1).
///
/// Each piece's UTF-8 bytes are mapped through `bytesToUnicode`, `</w>` is appended to the last
/// symbol, then the adjacent pair with the lowest merge rank is merged everywhere (left to
/// right, non-overlapping) until no ranked pair remains. Results are cached per piece.
final class BytePairEncoder: @unchecked Sendable {
    static let endOfWord = "</w>"

    /// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the other 68 to U+0100+n.
    static let bytesToUnicode: [Unicode.Scalar] = {
        var printable = Set<UInt8>()
        for b in UInt8(ascii: "!")...UInt8(ascii: "~") { printable.insert(b) }
        for b in UInt8(0xA1)...UInt8(0xAC) { printable.insert(b) }
        for b in UInt8(0xAE)...UInt8(0xFF) { printable.insert(b) }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if printable.contains(UInt8(b)) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return table
    }()

    let vocab: [String: Int32]
    /// "a b" → rank (line index after the `#version` header).
    let ranks: [String: Int]
    let unknownID: Int32
    private var cache: [String: [Int32]] = [:]
    private let lock = NSLock()

    init(vocab: [String: Int32], merges: [(String, String)], unknownID: Int32) {
        self.vocab = vocab
        var ranks = [String: Int](minimumCapacity: merges.count)
        for (rank, merge) in merges.enumerated() where ranks["\(merge.0) \(merge.1)"] == nil {
            ranks["\(merge.0) \(merge.1)"] = rank
        }
        self.ranks = ranks
        self.unknownID = unknownID
    }

    /// The BPE symbols of one pre-split piece (no byte mapping applied yet).
    func symbols(forPiece piece: String) -> [String] {
        var word = piece.utf8.map { String(Character(Self.bytesToUnicode[Int($0)])) }
        guard !word.isEmpty else { return [] }
        word[word.count - 1] += Self.endOfWord
        while word.count > 1 {
            var best: (rank: Int, a: String, b: String)? = nil
            for i in 0..<(word.count - 1) {
                if let r = ranks["\(word[i]) \(word[i + 1])"], r < (best?.rank ?? Int.max) {
                    best = (r, word[i], word[i + 1])
                }
            }
            guard let (_, a, b) = best else { break }
            var merged: [String] = []
            merged.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i < word.count - 1, word[i] == a, word[i + 1] == b {
                    merged.append(a + b)
                    i += 2
                } else {
                    merged.append(word[i])
                    i += 1
                }
            }
            word = merged
        }
        return word
    }

    /// Token ids of one pre-split piece; symbols missing from the vocabulary become `unknownID`.
    func ids(forPiece piece: String) -> [Int32] {
        lock.lock()
        if let hit = cache[piece] { lock.unlock(); return hit }
        lock.unlock()
        let ids = symbols(forPiece: piece).map { vocab[$0] ?? unknownID }
        lock.lock()
        cache[piece] = ids
        lock.unlock()
        return ids
    }
}
