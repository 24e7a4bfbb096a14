import Foundation
import MixDQModels

/// A tokenizer folder: the input is `vocab.json`, `merges.txt`, `tokenizer_config.json` and a
/// prompt, separated by NUL bytes (the config is left out when its part is empty). A tokenizer
/// that loads then encodes the prompt and a few fixed strings.
enum TokenizerFuzzTarget: FuzzTarget {
    static let name = "tokenizer"
    static let fixedPrompts = ["a photo of a cat", "", "<|startoftext|>x<|endoftext|>", "ÀÉ 123 !!"]

    static func run(_ input: Data) {
        let parts = FuzzScratch.parts(input, count: 4)
        FuzzScratch.write(parts[0], as: "tokenizer/vocab.json")
        FuzzScratch.write(parts.count > 1 ? parts[1] : Data(), as: "tokenizer/merges.txt")
        if parts.count > 2, !parts[2].isEmpty {
            FuzzScratch.write(parts[2], as: "tokenizer/tokenizer_config.json")
        } else {
            FuzzScratch.remove("tokenizer/tokenizer_config.json")
        }
        guard let tokenizer = try? CLIPTokenizer(folder: FuzzScratch.folder.appendingPathComponent("tokenizer")) else { return }
        let prompt = parts.count > 3 ? String(decoding: parts[3], as: UTF8.self) : ""
        for text in [prompt] + fixedPrompts { _ = tokenizer.encode(text) }
    }
}
