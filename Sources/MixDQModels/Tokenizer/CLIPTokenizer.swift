import Foundation

/// The CLIP BPE tokenizer SDXL uses for both text encoders (sdxl-architecture.md §4).
///
/// `encode` gives what diffusers gets from
/// `tokenizer(prompt, padding="max_length", max_length=77, truncation=True).input_ids`:
/// `[BOS] + ids[:75] + [EOS]`, padded with the pad id (49407 for `tokenizer/`, 0 = "!" for
/// `tokenizer_2/`). Added tokens ("<|endoftext|>", and "!" in tokenizer_2) are cut out of the
/// text before BPE, so each "!" in a prompt becomes id 0 in tokenizer_2 (§4.4).
public final class CLIPTokenizer: @unchecked Sendable {
    public let bosID: Int32
    public let eosID: Int32
    public let padID: Int32
    public let unknownID: Int32
    /// Sequence length including BOS and EOS (77).
    public let maxLength: Int
    public let normalization: CLIPTextNormalization
    public let addedTokens: [CLIPAddedToken]
    let bpe: BytePairEncoder
    /// Added tokens as scalar arrays, longest first (leftmost-longest matching).
    private let rawTokens: [(scalars: [Unicode.Scalar], id: Int32)]
    private let normalizedTokens: [(scalars: [Unicode.Scalar], id: Int32)]

    /// Loads `vocab.json` + `merges.txt` (+ `tokenizer_config.json`, `special_tokens_map.json`)
    /// or a transformers-5 `tokenizer.json` from a model's `tokenizer/` or `tokenizer_2/` folder.
    public convenience init(folder: URL, normalization: CLIPTextNormalization = .transformers) throws {
        try self.init(files: try CLIPTokenizerFiles.load(folder: folder), normalization: normalization)
    }

    public init(files: CLIPTokenizerFiles, normalization: CLIPTextNormalization = .transformers) throws {
        bosID = try files.id(of: files.bosToken, role: "bos_token")
        eosID = try files.id(of: files.eosToken, role: "eos_token")
        padID = try files.id(of: files.padToken, role: "pad_token")
        unknownID = try files.id(of: files.unkToken, role: "unk_token")
        maxLength = files.maxLength
        self.normalization = normalization
        addedTokens = files.addedTokens
        bpe = BytePairEncoder(vocab: files.vocab, merges: files.merges, unknownID: unknownID)
        let byLength = files.addedTokens.filter { !$0.content.isEmpty }
            .sorted { $0.content.unicodeScalars.count > $1.content.unicodeScalars.count }
        rawTokens = byLength.filter { !$0.normalized }.map { (Array($0.content.unicodeScalars), $0.id) }
        normalizedTokens = byLength.filter { $0.normalized }
            .map { (Array(normalization.normalize($0.content).unicodeScalars), $0.id) }
    }

    /// Padded, truncated ids for one prompt: exactly `maxLength` values.
    public func encode(_ text: String) -> [Int32] {
        let content = tokenIDs(text).prefix(maxLength - 2)
        var ids: [Int32] = [bosID]
        ids.reserveCapacity(maxLength)
        ids.append(contentsOf: content)
        ids.append(eosID)
        while ids.count < maxLength { ids.append(padID) }
        return ids
    }

    /// Ids for a batch of prompts, row-major `[prompts.count, maxLength]`.
    public func encode(batch prompts: [String]) -> [Int32] {
        prompts.flatMap { encode($0) }
    }

    /// The BPE ids of `text` without BOS/EOS, padding or truncation.
    public func tokenIDs(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        // 1. tokens flagged normalized=false are matched on the raw text
        for segment in Self.splitAddedTokens(Array(text.unicodeScalars), rawTokens) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let raw):
                // 2. normalise, then match the normalized added tokens
                let normalized = normalization.normalize(String(String.UnicodeScalarView(raw)))
                for part in Self.splitAddedTokens(Array(normalized.unicodeScalars), normalizedTokens) {
                    switch part {
                    case .token(let id):
                        ids.append(id)
                    case .text(let scalars):
                        // 3. pre-split and BPE
                        for piece in CLIPPreSplit.split(String(String.UnicodeScalarView(scalars))) {
                            ids.append(contentsOf: bpe.ids(forPiece: piece))
                        }
                    }
                }
            }
        }
        return ids
    }

    /// BPE symbols (vocabulary strings) of `text`, for debugging and tests.
    public func tokens(_ text: String) -> [String] {
        let inverse = Dictionary(bpe.vocab.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        var added: [Int32: String] = [:]
        for t in addedTokens { added[t.id] = t.content }
        return tokenIDs(text).map { added[$0] ?? inverse[$0] ?? "<unk>" }
    }

    enum Segment {
        case text([Unicode.Scalar])
        case token(Int32)
    }

    /// Leftmost-longest split of `text` by `tokens` (tokenizers' added-vocabulary matcher).
    static func splitAddedTokens(_ text: [Unicode.Scalar], _ tokens: [(scalars: [Unicode.Scalar], id: Int32)]) -> [Segment] {
        guard !tokens.isEmpty else { return [.text(text)] }
        var out: [Segment] = []
        var start = 0
        var i = 0
        scan: while i < text.count {
            for token in tokens where i + token.scalars.count <= text.count {
                if text[i..<(i + token.scalars.count)].elementsEqual(token.scalars) {
                    if start < i { out.append(.text(Array(text[start..<i]))) }
                    out.append(.token(token.id))
                    i += token.scalars.count
                    start = i
                    continue scan
                }
            }
            i += 1
        }
        if start < text.count { out.append(.text(Array(text[start...]))) }
        return out
    }
}
