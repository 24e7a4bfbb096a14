import ArgumentParser
import Foundation
import MixDQQuant

/// Flag values and input files shared by `search allocate` and `search allocate-scan`.
enum SearchInputs {
    /// "2,4,8" → [2, 4, 8], naming the flag on bad text.
    static func bits(_ text: String, flag: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return try parts.map { p in
            guard let b = Int(p), (1...16).contains(b) else {
                throw ValidationError("\(flag) \(text): '\(p)' is not a bit width between 1 and 16")
            }
            return b
        }
    }

    static func finite(_ v: Double, flag: String, positive: Bool = true) throws {
        guard v.isFinite, positive ? v > 0 : v >= 0 else {
            throw ValidationError("\(flag) \(v): must be a \(positive ? "positive" : "non-negative") number")
        }
    }

    static func group(_ text: String) throws -> LayerGroup {
        guard let g = LayerGroup(rawValue: text) else {
            throw ValidationError("--group \(text): expected content, quality or all")
        }
        return g
    }

    static func url(_ path: String) -> URL { URL(fileURLWithPath: path) }

    /// The exclude list (the act-protect list, YAML or the original's .pt), or none.
    static func excluded(_ path: String?) throws -> [String] {
        try path.map { try BitConfig.loadLayerList(url($0)) } ?? []
    }
}
