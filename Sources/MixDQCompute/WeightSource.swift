

/// Where a model's parameters come from, keyed by their diffusers / transformers state-dict name.
///
/// Models are built by walking their own module paths and asking the source for each tensor, so
/// a real checkpoint, a test fixture and seeded random weights (for benchmarks) all go through one
/// construction path. `finish()` reports keys that were never asked for.
public protocol WeightSource: AnyObject {
    /// Returns the tensor named `key` as float32, checking it has `shape`.
    /// Throws `WeightError.missing` or `.shapeMismatch` naming the key and both shapes.
    func tensor(_ key: String, shape: [Int]) throws -> Tensor
    /// True when the source holds `key` (for optional tensors and legacy key spellings).
    func contains(_ key: String) -> Bool
    /// Throws `WeightError.unexpected` listing keys present in the source but never requested.
    func finish() throws
}

public enum WeightError: Error, CustomStringConvertible, Equatable {
    case missing(key: String, file: String)
    case shapeMismatch(key: String, expected: [Int], found: [Int], file: String)
    case unexpected(keys: [String], file: String)

    public var description: String {
        switch self {
        case let .missing(key, file):
            return "\(file): missing tensor '\(key)'"
        case let .shapeMismatch(key, expected, found, file):
            return "\(file): tensor '\(key)' has shape \(found), the model expects \(expected)"
        case let .unexpected(keys, file):
            let shown = keys.prefix(10).joined(separator: ", ")
            return "\(file): \(keys.count) unexpected tensor(s) the model does not use: \(shown)\(keys.count > 10 ? ", ..." : "")"
        }
    }
}
