import Foundation

/// GPT-2 style byte-level BPE with CLIP's `</w>` end-of-word marker (sdxl-architecture.md §4.1).
///
/// Each piece's UTF-8 bytes are mapped through `bytesToUnicode`, `</w>` is appended to the last
/// symbol, then the adjacent pair with the lowest merge rank is merged everywhere (left to
/// right, non-overlapping) until no ranked pair remains (`symbolIDs`). Results are cached per piece.
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
    let unknownID: Int32
    /// Every symbol a word can hold (the 512 byte symbols with and without `</w>`, and each merge
    /// result), by dense id; BPE works on ids and looks strings up only at the end.
    private let symbolStrings: [String]
    /// Token id of each symbol (`unknownID` when the vocabulary lacks it).
    private let symbolTokenIDs: [Int32]
    /// Byte b's symbol id, and with `</w>` appended (the last byte of a piece).
    private let byteSymbols: [Int32], byteEndSymbols: [Int32]
    /// (left id << 32 | right id) → (rank << 32 | merged id); the first line naming a pair wins.
    private let mergeTable: [UInt64: UInt64]
    private var cache: [String: [Int32]] = [:]
    private let lock = NSLock()

    init(vocab: [String: Int32], merges: [(String, String)], unknownID: Int32) {
        self.vocab = vocab
        self.unknownID = unknownID
        var strings: [String] = []
        var ids: [String: Int32] = [:]
        func intern(_ s: String) -> Int32 {
            if let id = ids[s] { return id }
            let id = Int32(strings.count)
            strings.append(s)
            ids[s] = id
            return id
        }
        byteSymbols = Self.bytesToUnicode.map { intern(String(Character($0))) }
        byteEndSymbols = Self.bytesToUnicode.map { intern(String(Character($0)) + Self.endOfWord) }
        var table = [UInt64: UInt64](minimumCapacity: merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            let key = Self.pairKey(intern(a), intern(b))
            if table[key] == nil { table[key] = UInt64(rank) << 32 | UInt64(UInt32(intern(a + b))) }
        }
        mergeTable = table
        symbolStrings = strings
        symbolTokenIDs = strings.map { vocab[$0] ?? unknownID }
    }

    private static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }

    /// The BPE symbols of one pre-split piece (no byte mapping applied yet).
    func symbols(forPiece piece: String) -> [String] { symbolIDs(forPiece: piece).map { symbolStrings[Int($0)] } }

    /// BPE on symbol ids, with the reference's semantics (transformers' `CLIPTokenizer.bpe`): the
    /// lowest-ranked adjacent pair is merged at every occurrence, left to right and non-overlapping,
    /// then the next lowest, until no ranked pair remains. The reference rescans the word per merge
    /// (quadratic: minutes for a 100k-character word); here the symbols form a linked list and the
    /// candidate pairs a heap, O(n log n). One rank is handled as a round: all its queued pairs in
    /// position order, and the pairs those merges create are queued only after the round, exactly
    /// as the reference sees them only in its next scan.
    func symbolIDs(forPiece piece: String) -> [Int32] {
        let bytes = Array(piece.utf8)
        guard let lastByte = bytes.last else { return [] }
        var symbol = bytes.map { byteSymbols[Int($0)] }
        symbol[symbol.count - 1] = byteEndSymbols[Int(lastByte)]
        let n = symbol.count
        if n == 1 { return symbol }
        // Linked list over positions; a position merged into its left neighbour gets symbol -1.
        var next = (0..<n).map { Int32($0 + 1) }       // n: none
        var prev = (0..<n).map { Int32($0 - 1) }       // -1: none
        var queue = MergeQueue()
        func candidate(_ left: Int32) -> UInt64? {
            guard left >= 0 else { return nil }
            let right = next[Int(left)]
            guard right < n, let m = mergeTable[Self.pairKey(symbol[Int(left)], symbol[Int(right)])] else { return nil }
            return MergeQueue.pack(rank: Int32(m >> 32), position: left)
        }
        for i in 0..<(n - 1) { if let c = candidate(Int32(i)) { queue.push(c) } }
        var created: [UInt64] = []
        while let first = queue.min {
            let rank = MergeQueue.rank(first)
            created.removeAll(keepingCapacity: true)
            while let top = queue.min, MergeQueue.rank(top) == rank {
                _ = queue.popMin()
                let left = Int(MergeQueue.position(top))
                // Skip stale entries: the position was merged away or its pair has changed.
                guard symbol[left] >= 0 else { continue }
                let right = Int(next[left])
                guard right < n, let m = mergeTable[Self.pairKey(symbol[left], symbol[right])],
                      Int32(m >> 32) == rank else { continue }
                symbol[left] = Int32(truncatingIfNeeded: m)
                symbol[right] = -1
                next[left] = next[right]
                if Int(next[right]) < n { prev[Int(next[right])] = Int32(left) }
                if let c = candidate(prev[left]) { created.append(c) }
                if let c = candidate(Int32(left)) { created.append(c) }
            }
            for c in created { queue.push(c) }
        }
        var out: [Int32] = []
        var i = 0
        while i < n { out.append(symbol[i]); i = Int(next[i]) }
        return out
    }

    /// Token ids of one pre-split piece; symbols missing from the vocabulary become `unknownID`.
    func ids(forPiece piece: String) -> [Int32] {
        lock.lock()
        if let hit = cache[piece] { lock.unlock(); return hit }
        lock.unlock()
        let ids = symbolIDs(forPiece: piece).map { symbolTokenIDs[Int($0)] }
        lock.lock()
        cache[piece] = ids
        lock.unlock()
        return ids
    }
}
