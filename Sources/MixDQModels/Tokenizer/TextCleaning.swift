import Foundation

/// How prompt text is normalised before the CLIP pre-split (sdxl-architecture.md §4.1).
public enum CLIPTextNormalization: String, Sendable, CaseIterable {
    /// transformers 5's tokenizers-backed `CLIPTokenizer`: NFC, `\s+` → " ", lowercase. This is
    /// what diffusers runs today and what the goldens were made with. Runs of CJK ideographs
    /// stay together as one letter run.
    case transformers
    /// The slow python `CLIPTokenizer` without ftfy (transformers 4.x): BasicTokenizer cleaning
    /// (drop NUL, U+FFFD and control/format characters, whitespace → space, spaces around CJK
    /// ideographs), NFC, lowercase, whitespace collapsed. Differs from `.transformers` only on
    /// CJK ideographs and control/format characters.
    case basicTokenizer

    /// Normalises one text segment (added tokens are split out before this runs).
    public func normalize(_ text: String) -> String {
        switch self {
        case .transformers:
            return Self.lowercase(Self.collapseWhitespace(text.precomposedStringWithCanonicalMapping))
        case .basicTokenizer:
            var cleaned = String.UnicodeScalarView()
            for s in text.unicodeScalars {
                if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
                if Self.isBertWhitespace(s) {
                    cleaned.append(" ")
                } else if Self.isCJKIdeograph(s) {
                    cleaned.append(" "); cleaned.append(s); cleaned.append(" ")
                } else {
                    cleaned.append(s)
                }
            }
            let nfc = String(cleaned).precomposedStringWithCanonicalMapping
            let words = Self.lowercase(nfc).unicodeScalars.split(whereSeparator: { $0.properties.isWhitespace })
            return words.map { String(String.UnicodeScalarView($0)) }.joined(separator: " ")
        }
    }

    /// Per-scalar full lowercase mapping (Rust's `char::to_lowercase`, which tokenizers uses:
    /// no context-sensitive final sigma).
    static func lowercase(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.properties.changesWhenLowercased {
                out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(s)
            }
        }
        return String(out)
    }

    /// Replaces each run of Unicode whitespace with one space.
    static func collapseWhitespace(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var inSpace = false
        for s in text.unicodeScalars {
            if s.properties.isWhitespace {
                if !inSpace { out.append(" ") }
                inSpace = true
            } else {
                out.append(s)
                inSpace = false
            }
        }
        return String(out)
    }

    /// BERT `_is_whitespace`: space, \t, \n, \r and category Zs.
    static func isBertWhitespace(_ s: Unicode.Scalar) -> Bool {
        if s == " " || s == "\t" || s == "\n" || s == "\r" { return true }
        return s.properties.generalCategory == .spaceSeparator
    }

    /// BERT `_is_control`: categories Cc/Cf except \t, \n, \r (which count as whitespace).
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format: return true
        default: return false
        }
    }

    /// BERT `_is_chinese_char`: the CJK Unified Ideographs blocks (not kana or hangul).
    static func isCJKIdeograph(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}

/// CLIP's pre-split, the regex
/// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`,
/// written as a scanner over Unicode scalars: at each position the alternatives are tried in
/// that order; whitespace matches none of them and is dropped.
enum CLIPPreSplit {
    static let specials = ["<|startoftext|>", "<|endoftext|>"].map { Array($0.unicodeScalars) }
    static let contractions = ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }

    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    static func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    /// Case-insensitive match of `pattern` at `i` (the regex runs with IGNORECASE in the slow tokenizer).
    private static func matches(_ text: [Unicode.Scalar], at i: Int, _ pattern: [Unicode.Scalar]) -> Bool {
        guard i + pattern.count <= text.count else { return false }
        for k in 0..<pattern.count where text[i + k] != pattern[k] {
            let lower = text[i + k].properties.lowercaseMapping
            if lower.unicodeScalars.count != 1 || lower.unicodeScalars.first! != pattern[k] { return false }
        }
        return true
    }

    static func split(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var pieces: [String] = []
        var i = 0
        func emit(_ range: Range<Int>) {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: s[range])
            pieces.append(String(v))
        }
        scan: while i < s.count {
            for special in specials where matches(s, at: i, special) {
                emit(i..<(i + special.count)); i += special.count
                continue scan
            }
            if s[i] == "'" {
                for c in contractions where matches(s, at: i + 1, c) {
                    emit(i..<(i + 1 + c.count)); i += 1 + c.count
                    continue scan
                }
            }
            let c = s[i]
            if isLetter(c) {
                var j = i + 1
                while j < s.count, isLetter(s[j]) { j += 1 }
                emit(i..<j); i = j
            } else if isNumber(c) {
                emit(i..<(i + 1)); i += 1
            } else if isSpace(c) {
                i += 1
            } else {
                var j = i + 1
                while j < s.count, !isSpace(s[j]), !isLetter(s[j]), !isNumber(s[j]) { j += 1 }
                emit(i..<j); i = j
            }
        }
        return pieces
    }
}
