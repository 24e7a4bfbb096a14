import Foundation

/// Errors from loading tokenizer files; each names the file at fault.
public enum TokenizerError: Error, CustomStringConvertible, LocalizedError {
    case missingFolder(path: String)
    case missingFile(path: String)
    case unreadable(path: String, underlying: String)
    case unwritable(path: String, underlying: String)
    case invalidJSON(path: String, underlying: String)
    case malformed(path: String, detail: String)
    case unknownToken(token: String, role: String, path: String)
    case assetsNotFound(searched: [String])

    public var description: String {
        switch self {
        case let .missingFolder(path):
            return "tokenizer folder not found: \(path)"
        case let .missingFile(path):
            return "tokenizer file not found: \(path)"
        case let .unreadable(path, underlying):
            return "cannot read tokenizer file \(path): \(underlying)"
        case let .unwritable(path, underlying):
            return "cannot write tokenizer file \(path): \(underlying)"
        case let .invalidJSON(path, underlying):
            return "tokenizer file \(path) is not valid JSON: \(underlying)"
        case let .malformed(path, detail):
            return "tokenizer file \(path) is malformed: \(detail)"
        case let .unknownToken(token, role, path):
            return "\(role) \"\(token)\" from \(path) is neither in the vocabulary nor an added token"
        case let .assetsNotFound(searched):
            return "CLIP BPE assets (assets/clip-bpe/vocab.json) not found; set MIXDQ_ASSETS. Searched: "
                + searched.joined(separator: ", ")
        }
    }

    public var errorDescription: String? { description }
}

/// A token matched in the raw or normalised text before BPE (transformers' `AddedToken`).
public struct CLIPAddedToken: Equatable, Sendable {
    public var content: String
    public var id: Int32
    public var special: Bool
    /// Matched after normalisation (lowercasing) when true, on the raw text when false.
    public var normalized: Bool

    public init(content: String, id: Int32, special: Bool, normalized: Bool) {
        self.content = content
        self.id = id
        self.special = special
        self.normalized = normalized
    }
}

/// Everything a `CLIPTokenizer` is built from, read from either file layout.
public struct CLIPTokenizerFiles {
    public var vocab: [String: Int32]
    public var merges: [(String, String)]
    public var addedTokens: [CLIPAddedToken]
    public var bosToken: String
    public var eosToken: String
    public var padToken: String
    public var unkToken: String
    public var maxLength: Int
    /// The file the special tokens came from, for error messages.
    public var sourcePath: String

    /// Reads `vocab.json` + `merges.txt` (+ tokenizer_config.json / special_tokens_map.json),
    /// or `tokenizer.json` when the folder has no vocab.json.
    public static func load(folder: URL) throws -> CLIPTokenizerFiles {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir), isDir.boolValue else {
            throw TokenizerError.missingFolder(path: folder.path)
        }
        let vocabURL = folder.appendingPathComponent("vocab.json")
        let tokenizerJSON = folder.appendingPathComponent("tokenizer.json")
        if !FileManager.default.fileExists(atPath: vocabURL.path), FileManager.default.fileExists(atPath: tokenizerJSON.path) {
            return try loadTokenizerJSON(folder: folder)
        }
        return try loadVocabMerges(folder: folder)
    }

    // MARK: vocab.json + merges.txt

    static func loadVocabMerges(folder: URL) throws -> CLIPTokenizerFiles {
        let vocabURL = folder.appendingPathComponent("vocab.json")
        let mergesURL = folder.appendingPathComponent("merges.txt")
        let vocab = try parseVocab(try readJSON(vocabURL), path: vocabURL.path)
        let merges = try parseMergesText(try readText(mergesURL), path: mergesURL.path)
        try checkMerges(merges, vocab: vocab, path: mergesURL.path, vocabPath: vocabURL.path)

        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        let mapURL = folder.appendingPathComponent("special_tokens_map.json")
        let config = try optionalJSONObject(configURL) ?? [:]
        let map = try optionalJSONObject(mapURL) ?? [:]

        var added: [CLIPAddedToken] = []
        if let decoder = config["added_tokens_decoder"] {
            guard let entries = decoder as? [String: Any] else {
                throw TokenizerError.malformed(path: configURL.path, detail: "\"added_tokens_decoder\" is not an object")
            }
            for (key, value) in entries {
                guard let id = Int32(key), let dict = value as? [String: Any], let content = dict["content"] as? String else {
                    throw TokenizerError.malformed(path: configURL.path, detail: "bad added_tokens_decoder entry \"\(key)\"")
                }
                let special = dict["special"] as? Bool ?? false
                added.append(CLIPAddedToken(content: content, id: id, special: special,
                                            normalized: dict["normalized"] as? Bool ?? !special))
            }
        }
        func token(_ key: String, default def: String) throws -> (String, Bool?) {
            for (source, path) in [(config, configURL.path), (map, mapURL.path)] {
                if let value = source[key], !(value is NSNull) {
                    return try tokenContent(value, key: key, path: path)
                }
            }
            return (def, nil)
        }
        let bos = try token("bos_token", default: "<|startoftext|>")
        let eos = try token("eos_token", default: "<|endoftext|>")
        let pad = try token("pad_token", default: "<|endoftext|>")
        let unk = try token("unk_token", default: "<|endoftext|>")
        var files = CLIPTokenizerFiles(
            vocab: vocab, merges: merges, addedTokens: added, bosToken: bos.0, eosToken: eos.0, padToken: pad.0,
            unkToken: unk.0, maxLength: maxLength(config["model_max_length"]),
            sourcePath: FileManager.default.fileExists(atPath: configURL.path) ? configURL.path : folder.path)
        // transformers registers every special token as an added (never-split) token
        for (content, normalized) in [bos, eos, pad, unk] {
            try files.registerSpecial(content, normalized: normalized ?? false)
        }
        return files
    }

    // MARK: tokenizer.json (transformers 5)

    static func loadTokenizerJSON(folder: URL) throws -> CLIPTokenizerFiles {
        let url = folder.appendingPathComponent("tokenizer.json")
        guard let root = try readJSON(url) as? [String: Any] else {
            throw TokenizerError.malformed(path: url.path, detail: "top level is not an object")
        }
        guard let model = root["model"] as? [String: Any] else {
            throw TokenizerError.malformed(path: url.path, detail: "missing \"model\"")
        }
        if let type = model["type"] as? String, type != "BPE" {
            throw TokenizerError.malformed(path: url.path, detail: "model type \"\(type)\" is not BPE")
        }
        guard let vocabObject = model["vocab"] else {
            throw TokenizerError.malformed(path: url.path, detail: "missing \"model.vocab\"")
        }
        let vocab = try parseVocab(vocabObject, path: url.path)
        guard let rawMerges = model["merges"] as? [Any] else {
            throw TokenizerError.malformed(path: url.path, detail: "missing \"model.merges\" list")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(rawMerges.count)
        for (i, m) in rawMerges.enumerated() {
            if let s = m as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw TokenizerError.malformed(path: url.path, detail: "merge \(i) \"\(s)\" is not two tokens")
                }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = m as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                merges.append((a, b))
            } else {
                throw TokenizerError.malformed(path: url.path, detail: "merge \(i) is neither \"a b\" nor [a, b]")
            }
        }
        try checkMerges(merges, vocab: vocab, path: url.path, vocabPath: url.path)
        var added: [CLIPAddedToken] = []
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = entry["content"] as? String, let id = (entry["id"] as? NSNumber)?.int32Value else {
                throw TokenizerError.malformed(path: url.path, detail: "added token without content/id")
            }
            let special = entry["special"] as? Bool ?? false
            added.append(CLIPAddedToken(content: content, id: id, special: special,
                                        normalized: entry["normalized"] as? Bool ?? !special))
        }
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        let config = try optionalJSONObject(configURL) ?? [:]
        func fromConfig(_ key: String) throws -> String? {
            guard let value = config[key], !(value is NSNull) else { return nil }
            return try tokenContent(value, key: key, path: configURL.path).0
        }
        // the post-processor names the sequence markers when tokenizer_config.json does not
        let post = root["post_processor"] as? [String: Any]
        func postToken(_ key: String) -> String? { (post?[key] as? [Any])?.first as? String }
        let padding = root["padding"] as? [String: Any]
        let pad = try fromConfig("pad_token") ?? padding?["pad_token"] as? String ?? "<|endoftext|>"
        var files = CLIPTokenizerFiles(
            vocab: vocab, merges: merges, addedTokens: added,
            bosToken: try fromConfig("bos_token") ?? postToken("cls") ?? "<|startoftext|>",
            eosToken: try fromConfig("eos_token") ?? postToken("sep") ?? "<|endoftext|>",
            padToken: pad,
            unkToken: try fromConfig("unk_token") ?? model["unk_token"] as? String ?? "<|endoftext|>",
            maxLength: maxLength(config["model_max_length"]), sourcePath: url.path)
        for content in [files.bosToken, files.eosToken, files.padToken, files.unkToken] {
            try files.registerSpecial(content, normalized: false)
        }
        return files
    }

    // MARK: helpers

    /// Adds a special token to the added-token list unless it is already there.
    mutating func registerSpecial(_ content: String, normalized: Bool) throws {
        if addedTokens.contains(where: { $0.content == content }) { return }
        guard let id = vocab[content] else { return }  // resolved (or rejected) by the tokenizer
        addedTokens.append(CLIPAddedToken(content: content, id: id, special: true, normalized: normalized))
    }

    /// Token id of `content` as an added token or vocabulary entry.
    public func id(of content: String, role: String) throws -> Int32 {
        if let t = addedTokens.first(where: { $0.content == content }) { return t.id }
        if let id = vocab[content] { return id }
        throw TokenizerError.unknownToken(token: content, role: role, path: sourcePath)
    }

    /// A special-token value: a string or an AddedToken dict `{"content": ..., "normalized": ...}`.
    static func tokenContent(_ value: Any, key: String, path: String) throws -> (String, Bool?) {
        if let s = value as? String { return (s, nil) }
        if let d = value as? [String: Any], let s = d["content"] as? String { return (s, d["normalized"] as? Bool) }
        throw TokenizerError.malformed(path: path, detail: "\"\(key)\" is neither a string nor {\"content\": ...}")
    }

    static func maxLength(_ value: Any?) -> Int {
        // CLIP is always 77; some configs store a huge sentinel (1e30) meaning "unset"
        if let n = value as? NSNumber, n.doubleValue >= 2, n.doubleValue <= 1_000_000 { return n.intValue }
        return 77
    }

    static func parseVocab(_ object: Any, path: String) throws -> [String: Int32] {
        guard let dict = object as? [String: Any] else {
            throw TokenizerError.malformed(path: path, detail: "vocabulary is not a JSON object of token → id")
        }
        var vocab = [String: Int32](minimumCapacity: dict.count)
        for (token, value) in dict {
            guard let n = value as? NSNumber, let id = Int32(exactly: n.doubleValue) else {
                throw TokenizerError.malformed(path: path, detail: "id of \"\(token)\" is not an integer")
            }
            vocab[token] = id
        }
        if vocab.count != dict.count {
            throw TokenizerError.malformed(path: path, detail: "vocabulary has canonically equivalent duplicate tokens")
        }
        if vocab.isEmpty {
            throw TokenizerError.malformed(path: path, detail: "the vocabulary is empty")
        }
        return vocab
    }

    /// Every merge must join two vocabulary tokens into a third (tokenizers refuses such a file
    /// too); otherwise BPE would build symbols that only map to the unknown token.
    static func checkMerges(_ merges: [(String, String)], vocab: [String: Int32], path: String, vocabPath: String) throws {
        for (i, (a, b)) in merges.enumerated() {
            for token in [a, b, a + b] where vocab[token] == nil {
                throw TokenizerError.malformed(
                    path: path, detail: "merge \(i + 1) \"\(a) \(b)\" uses \"\(token)\", which is not in the vocabulary (\(vocabPath))")
            }
        }
    }

    /// merges.txt: an optional `#version` header, then one "a b" pair per line.
    static func parseMergesText(_ text: String, path: String) throws -> [(String, String)] {
        var merges: [(String, String)] = []
        merges.reserveCapacity(49_000)
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || (index == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.malformed(path: path, detail: "line \(index + 1) \"\(line.prefix(40))\" is not two space-separated tokens")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        if merges.isEmpty {
            throw TokenizerError.malformed(path: path, detail: "no merges")
        }
        return merges
    }

    static func readData(_ url: URL) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else { throw TokenizerError.missingFile(path: url.path) }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadable(path: url.path, underlying: error.localizedDescription)
        }
    }

    static func readText(_ url: URL) throws -> String {
        guard let text = String(data: try readData(url), encoding: .utf8) else {
            throw TokenizerError.malformed(path: url.path, detail: "not UTF-8 text")
        }
        return text
    }

    static func readJSON(_ url: URL) throws -> Any {
        let data = try readData(url)
        do {
            return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw TokenizerError.invalidJSON(path: url.path, underlying: error.localizedDescription)
        }
    }

    static func optionalJSONObject(_ url: URL) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let object = try readJSON(url) as? [String: Any] else {
            throw TokenizerError.malformed(path: url.path, detail: "top level is not an object")
        }
        return object
    }
}
