import Foundation

/// A config value diffusers allows as either one number or one per block (`attention_head_dim`,
/// `transformer_layers_per_block`, `layers_per_block`, `cross_attention_dim`).
public enum IntOrList: Decodable, Equatable, Sendable {
    case single(Int)
    case list([Int])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Int.self) { self = .single(v); return }
        if let v = try? c.decode([Int].self) { self = .list(v); return }
        throw DecodingError.typeMismatch(IntOrList.self, .init(codingPath: decoder.codingPath,
                                                              debugDescription: "expected an integer or a list of integers"))
    }

    /// One value per block.
    public func perBlock(_ count: Int) -> [Int] {
        switch self {
        case .single(let v): return Array(repeating: v, count: count)
        case .list(let v): return v
        }
    }
}

/// Errors of a model folder's JSON configs, naming the file and the key.
public struct ModelConfigError: Error, CustomStringConvertible, LocalizedError {
    public let file: String
    public let message: String
    public init(file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
    public var errorDescription: String? { description }

    /// Decodes `T` from a JSON file, turning DecodingError into a message naming the key.
    public static func decode<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data: Data
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue {
            throw ModelConfigError(file: url.path, "is a folder, not a config file (give the config.json inside it)")
        }
        do { data = try Data(contentsOf: url) } catch {
            throw ModelConfigError(file: url.path, "cannot read config (\(error.localizedDescription))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted(let ctx) = error, ctx.codingPath.isEmpty,
               let key = fractionalNumberBlamed(T.self, in: data) {
                throw ModelConfigError(file: url.path, "key '\(key)' must be an integer, not a fractional number")
            }
            throw ModelConfigError(file: url.path, describe(error))
        } catch let error as ModelConfigError {
            throw ModelConfigError(file: url.path, error.message)
        } catch {
            throw ModelConfigError(file: url.path, "\(error)")
        }
    }

    /// Foundation's JSONDecoder reports a fractional number in an integer field as invalid JSON with
    /// no key. When the file is valid JSON, find the top-level key to blame: the fractional value
    /// whose truncation to an integer lets decoding get past it.
    static func fractionalNumberBlamed<T: Decodable>(_ type: T.Type, in data: Data) -> String? {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        func isFractional(_ v: Any) -> Bool {
            guard let n = v as? NSNumber else { return false }   // true/false are integral: never blamed
            let d = n.doubleValue
            return d.isFinite && d != d.rounded(.towardZero)
        }
        for key in object.keys.sorted() {
            guard let value = object[key] else { continue }
            let fractional = isFractional(value) || ((value as? [Any])?.contains(where: isFractional) ?? false)
            guard fractional else { continue }
            var patched = object
            if let list = value as? [Any] {
                patched[key] = list.map { isFractional($0) ? NSNumber(value: Int(($0 as! NSNumber).doubleValue)) : $0 }
            } else {
                patched[key] = NSNumber(value: Int((value as! NSNumber).doubleValue))
            }
            guard let again = try? JSONSerialization.data(withJSONObject: patched) else { continue }
            do { _ = try JSONDecoder().decode(T.self, from: again); return key } catch let e as DecodingError {
                if case .dataCorrupted(let ctx) = e, ctx.codingPath.isEmpty { continue }
                return key
            } catch { return key }
        }
        return nil
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ p: [CodingKey]) -> String { p.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") }
        switch error {
        case let .keyNotFound(key, ctx):
            let full = path(ctx.codingPath + [key])
            return "missing key '\(full)'"
        case let .typeMismatch(_, ctx), let .valueNotFound(_, ctx):
            return "key '\(path(ctx.codingPath))' has the wrong type: \(ctx.debugDescription)"
        case let .dataCorrupted(ctx):
            let p = path(ctx.codingPath)
            return p.isEmpty ? "not valid JSON: \(ctx.debugDescription)" : "key '\(p)': \(ctx.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
