import Foundation
import Yams

/// A configuration file that cannot be used: the file, the dotted key path, the line and what
/// is wrong ("configs/x.yaml, line 19: 'quant.weight.quantizer.n_bits': expected an integer ...").
public struct ConfigError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let file: String
    public let key: String?
    public let line: Int?
    public let message: String

    public init(file: String, key: String?, line: Int?, message: String) {
        self.file = file
        self.key = key
        self.line = line
        self.message = message
    }

    public var description: String {
        var s = file
        if let line { s += ", line \(line)" }
        if let key, !key.isEmpty { s += ": '\(key)'" }
        return s + ": " + message
    }

    public var errorDescription: String? { description }
}

/// Reads one YAML mapping key by key, typing scalars as PyYAML does for MixDQ's files, so that
/// every error names the dotted key and its line (Codable's errors give neither, and cannot
/// report keys nobody asked for).
///
/// Python-isms of the original configs are accepted: `None`/`none`/`null`/`~`/empty → nil,
/// `True`/`False` (and YAML 1.1 `yes`/`no`/`on`/`off`) → Bool, `0.` → 0.0. Quoted scalars are
/// always strings.
struct YAMLMapping {
    let file: String
    /// Dotted path of this mapping ("" at the document root).
    let path: String
    let line: Int?
    private let entries: [(key: String, keyNode: Node, value: Node)]

    /// Parses a whole document; its root must be a mapping.
    static func document(_ yaml: String, file: String) throws -> YAMLMapping {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw Self.configError(error, file: file)
        } catch {
            throw ConfigError(file: file, key: nil, line: nil, message: "not valid YAML (\(error))")
        }
        guard let root else { throw ConfigError(file: file, key: nil, line: nil, message: "the file is empty") }
        return try YAMLMapping(root, path: "", file: file)
    }

    /// `line` is where the mapping's key stands (a block mapping's own mark is its first child).
    init(_ node: Node, path: String, file: String, line: Int? = nil) throws {
        self.file = file
        self.path = path
        self.line = line ?? node.mark?.line
        guard let mapping = node.mapping else {
            throw ConfigError(file: file, key: path.isEmpty ? nil : path, line: node.mark?.line,
                              message: "expected a mapping of keys, found \(YAMLMapping.describe(node))")
        }
        var entries: [(String, Node, Node)] = []
        var seen: [String: Int] = [:]
        for (k, v) in mapping {
            guard let key = k.scalar?.string else {
                throw ConfigError(file: file, key: path.isEmpty ? nil : path, line: k.mark?.line,
                                  message: "keys must be plain names")
            }
            let full = path.isEmpty ? key : "\(path).\(key)"
            if let first = seen[key] {
                throw ConfigError(file: file, key: full, line: k.mark?.line,
                                  message: "duplicate key (first given on line \(first))")
            }
            seen[key] = k.mark?.line ?? 0
            entries.append((key, k, v))
        }
        self.entries = entries
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Fails on the first key not in `known`, naming it, its line and the keys that are allowed.
    func allowOnly(_ known: [String]) throws {
        for e in entries where !known.contains(e.key) {
            throw ConfigError(file: file, key: keyPath(e.key), line: e.keyNode.mark?.line,
                              message: "unknown key (allowed here: \(known.joined(separator: ", ")))")
        }
    }

    func node(_ key: String) -> Node? { entries.first { $0.key == key }?.value }

    func contains(_ key: String) -> Bool { entries.contains { $0.key == key } }

    func fail(_ key: String, _ message: String) -> ConfigError {
        // The key's line: an empty value's own mark can fall on the next line.
        let keyLine = entries.first { $0.key == key }?.keyNode.mark?.line
        return ConfigError(file: file, key: keyPath(key), line: keyLine ?? line, message: message)
    }

    /// The value node, or nil when the key is absent or its value is null.
    private func present(_ key: String) -> Node? {
        guard let n = node(key), !YAMLMapping.isNull(n) else { return nil }
        return n
    }

    private func required<T>(_ key: String, _ value: T?) throws -> T {
        if let value { return value }
        if contains(key) { throw fail(key, "a value is required here") }
        throw ConfigError(file: file, key: keyPath(key), line: path.isEmpty ? nil : line,
                          message: "missing key" + (path.isEmpty ? "" : " (in '\(path)')"))
    }

    // MARK: Typed values (nil when absent or null)

    func mapping(_ key: String) throws -> YAMLMapping? {
        guard let n = present(key) else { return nil }
        let keyLine = entries.first { $0.key == key }?.keyNode.mark?.line
        return try YAMLMapping(n, path: keyPath(key), file: file, line: keyLine)
    }

    func string(_ key: String) throws -> String? {
        guard let n = present(key) else { return nil }
        guard let s = n.scalar else { throw fail(key, "expected a string, found \(YAMLMapping.describe(n))") }
        return s.string
    }

    func int(_ key: String) throws -> Int? {
        guard let n = present(key) else { return nil }
        guard let s = n.scalar, s.style == .plain || s.style == .any, let v = YAMLMapping.parseInt(s.string) else {
            throw fail(key, "expected an integer, found \(YAMLMapping.describe(n))")
        }
        return v
    }

    func double(_ key: String) throws -> Double? {
        guard let n = present(key) else { return nil }
        guard let s = n.scalar, s.style == .plain || s.style == .any, let v = YAMLMapping.parseDouble(s.string) else {
            throw fail(key, "expected a number, found \(YAMLMapping.describe(n))")
        }
        return v
    }

    func bool(_ key: String) throws -> Bool? {
        guard let n = present(key) else { return nil }
        guard let s = n.scalar, s.style == .plain || s.style == .any, let v = YAMLMapping.parseBool(s.string) else {
            throw fail(key, "expected True or False, found \(YAMLMapping.describe(n))")
        }
        return v
    }

    func intList(_ key: String) throws -> [Int]? {
        guard let n = present(key) else { return nil }
        guard let seq = n.sequence else { throw fail(key, "expected a list of integers, found \(YAMLMapping.describe(n))") }
        return try seq.map { item in
            guard let s = item.scalar, s.style == .plain || s.style == .any, let v = YAMLMapping.parseInt(s.string) else {
                throw ConfigError(file: file, key: keyPath(key), line: item.mark?.line ?? n.mark?.line,
                                  message: "expected a list of integers, found the item \(YAMLMapping.describe(item))")
            }
            return v
        }
    }

    /// Accepts the key only when it is empty (a feature of the original this tool does not have).
    func requireEmpty(_ key: String, _ why: String) throws {
        if present(key) != nil { throw fail(key, why) }
    }

    func requiredMapping(_ key: String) throws -> YAMLMapping { try required(key, mapping(key)) }
    func requiredString(_ key: String) throws -> String { try required(key, string(key)) }
    func requiredInt(_ key: String) throws -> Int { try required(key, int(key)) }
    func requiredDouble(_ key: String) throws -> Double { try required(key, double(key)) }
    func requiredBool(_ key: String) throws -> Bool { try required(key, bool(key)) }

    // MARK: Scalar rules

    static let nullWords: Set<String> = ["", "~", "null", "Null", "NULL", "None", "none"]
    static let trueWords: Set<String> = ["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"]
    static let falseWords: Set<String> = ["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"]

    static func isNull(_ node: Node) -> Bool {
        guard let s = node.scalar else { return false }
        return (s.style == .plain || s.style == .any) && nullWords.contains(s.string)
    }

    static func parseBool(_ s: String) -> Bool? {
        if trueWords.contains(s) { return true }
        if falseWords.contains(s) { return false }
        return nil
    }

    static func parseInt(_ s: String) -> Int? {
        let t = s.replacingOccurrences(of: "_", with: "")
        guard !t.isEmpty, t.first != "_" else { return nil }
        return Int(t.hasPrefix("+") ? String(t.dropFirst()) : t)
    }

    /// Python-style floats (`0.`, `.5`, `7.5`, `1e-3`) and integers.
    static func parseDouble(_ s: String) -> Double? {
        let t = s.replacingOccurrences(of: "_", with: "")
        guard !t.isEmpty, t.allSatisfy({ "0123456789+-.eE".contains($0) }) else { return nil }
        if let v = Double(t) { return v }
        // "0." and "-3." end in a bare dot; "5.e-3" too.
        return Double(t.replacingOccurrences(of: ".", with: ".0"))
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case let .scalar(s):
            let quoted = s.style == .singleQuoted || s.style == .doubleQuoted
            return quoted ? "the quoted string \"\(s.string)\"" : "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// Yams' own descriptions quote the whole document; keep the problem and its line.
    private static func configError(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return ConfigError(file: file, key: nil, line: mark.line, message: "not valid YAML: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            return ConfigError(file: file, key: duplicates.first, line: context.mark.line, message: "duplicate key")
        default:
            return ConfigError(file: file, key: nil, line: nil, message: "not valid YAML (\(error))")
        }
    }
}
