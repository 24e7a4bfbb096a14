import Foundation

/// The OpenAI CLIP BPE files shipped in the repository (`assets/clip-bpe/`), and writing a
/// model's `tokenizer/` folder from them.
///
/// The files are 1.4 MB and are not compiled in (SwiftPM resources are not used): they are
/// found on disk next to the build, or through `MIXDQ_ASSETS`.
extension CLIPTokenizer {
    static let assetSubpath = "assets/clip-bpe"

    /// Finds `assets/clip-bpe`, searching in order: `$MIXDQ_ASSETS` (the `assets` folder or
    /// `clip-bpe` itself), the executable's folder and its parents (the repository root above
    /// `.build/...`), the current directory and its parents, and this source file's repository.
    public static func bundledAssetsFolder(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        let fm = FileManager.default
        var searched: [String] = []
        func hasVocab(_ dir: URL) -> Bool {
            searched.append(dir.path)
            return fm.fileExists(atPath: dir.appendingPathComponent("vocab.json").path)
                && fm.fileExists(atPath: dir.appendingPathComponent("merges.txt").path)
        }
        if let env = environment["MIXDQ_ASSETS"], !env.isEmpty {
            let base = URL(fileURLWithPath: env)
            for candidate in [base.appendingPathComponent("clip-bpe"), base, base.appendingPathComponent(assetSubpath)]
            where hasVocab(candidate) {
                return candidate.standardizedFileURL
            }
        }
        var roots: [URL] = []
        if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath() { roots.append(exe.deletingLastPathComponent()) }
        if let arg0 = CommandLine.arguments.first, arg0.contains("/") {
            roots.append(URL(fileURLWithPath: arg0).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        roots.append(URL(fileURLWithPath: fm.currentDirectoryPath))
        roots.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent())
        for root in roots {
            var dir = root.standardizedFileURL
            while true {
                let candidate = dir.appendingPathComponent(assetSubpath)
                if hasVocab(candidate) { return candidate }
                let parent = dir.deletingLastPathComponent()
                if parent.path == dir.path { break }
                dir = parent
            }
        }
        throw TokenizerError.assetsNotFound(searched: searched)
    }

    /// Writes vocab.json, merges.txt, special_tokens_map.json and tokenizer_config.json in the
    /// layout of SDXL-Turbo's `tokenizer/` (padToken "<|endoftext|>") or `tokenizer_2/`
    /// (padToken "!", registered as special added token 0), sdxl-architecture.md §1.6.
    public static func writeFolder(to folder: URL, padToken: String, assetsFolder: URL? = nil) throws {
        let assets = try assetsFolder ?? bundledAssetsFolder()
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw TokenizerError.unwritable(path: folder.path, underlying: "cannot create the folder (\(error.localizedDescription))")
        }
        for name in ["vocab.json", "merges.txt"] {
            let data = try CLIPTokenizerFiles.readData(assets.appendingPathComponent(name))
            try write(data, to: folder.appendingPathComponent(name))
        }
        let padIsBang = padToken == "!"
        let padNormalized = padIsBang ? "false" : "true"
        var decoder = ""
        if padIsBang {
            decoder += addedTokenJSON(id: 0, content: "!", normalized: false) + ",\n"
        }
        decoder += addedTokenJSON(id: 49406, content: "<|startoftext|>", normalized: true) + ",\n"
        decoder += addedTokenJSON(id: 49407, content: "<|endoftext|>", normalized: true)
        let config = """
        {
          "add_prefix_space": false,
          "added_tokens_decoder": {
        \(decoder)
          },
          "bos_token": "<|startoftext|>",
          "clean_up_tokenization_spaces": true,
          "do_lower_case": true,
          "eos_token": "<|endoftext|>",
          "errors": "replace",
          "model_max_length": 77,
          "pad_token": \(jsonString(padToken)),
          "tokenizer_class": "CLIPTokenizer",
          "unk_token": "<|endoftext|>"
        }

        """
        let specialMap = """
        {
          "bos_token": \(tokenDictJSON("<|startoftext|>", normalized: "true")),
          "eos_token": \(tokenDictJSON("<|endoftext|>", normalized: "true")),
          "pad_token": \(tokenDictJSON(padToken, normalized: padNormalized)),
          "unk_token": \(tokenDictJSON("<|endoftext|>", normalized: "true"))
        }

        """
        try write(Data(config.utf8), to: folder.appendingPathComponent("tokenizer_config.json"))
        try write(Data(specialMap.utf8), to: folder.appendingPathComponent("special_tokens_map.json"))
    }

    private static func write(_ data: Data, to url: URL) throws {
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw TokenizerError.unwritable(path: url.path, underlying: error.localizedDescription)
        }
    }

    private static func jsonString(_ s: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [s], options: [])
        let array = data.flatMap { String(data: $0, encoding: .utf8) } ?? "[\"\"]"
        return String(array.dropFirst().dropLast())
    }

    /// One `added_tokens_decoder` entry, indented as transformers writes it (indent 2, sorted keys).
    private static func addedTokenJSON(id: Int, content: String, normalized: Bool) -> String {
        """
            "\(id)": {
              "content": \(jsonString(content)),
              "lstrip": false,
              "normalized": \(normalized),
              "rstrip": false,
              "single_word": false,
              "special": true
            }
        """
    }

    private static func tokenDictJSON(_ content: String, normalized: String) -> String {
        """
        {
            "content": \(jsonString(content)),
            "lstrip": false,
            "normalized": \(normalized),
            "rstrip": false,
            "single_word": false
          }
        """
    }
}
