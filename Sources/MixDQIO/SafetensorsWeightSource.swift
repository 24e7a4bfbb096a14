import Foundation
import MixDQCompute

/// A `WeightSource` over one safetensors file or a sharded checkpoint.
///
/// Every key is looked up in the shard that holds it; `finish()` reports keys that were never
/// requested so a silently ignored tensor (a renamed layer, a wrong model variant) is caught.
/// A tensor holding NaN or Inf is rejected as it loads (`NonFiniteTensorError`).
public final class SafetensorsWeightSource: WeightSource, @unchecked Sendable {
    /// The weight files diffusers / transformers folders use, in the order `open(folder:)` tries them.
    public static let defaultCandidates = [
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.fp16.safetensors",
        "model.safetensors",
        "model.fp16.safetensors",
        "diffusion_pytorch_model.safetensors.index.json",
        "diffusion_pytorch_model.fp16.safetensors.index.json",
        "model.safetensors.index.json",
        "model.fp16.safetensors.index.json",
    ]

    public let files: [SafetensorsFile]
    /// What error messages call this source: the file, or the index for a sharded checkpoint.
    public let name: String
    /// Keys ending in one of these are allowed to stay unused (e.g. `position_ids` buffers).
    public let ignoredKeyPatterns: [String]

    private let fileForKey: [String: SafetensorsFile]
    private var used = Set<String>()
    private let lock = NSLock()   // models may load layers concurrently

    public convenience init(file url: URL, ignoredKeyPatterns: [String] = []) throws {
        try self.init(files: [SafetensorsFile(url)], name: url.path, ignoredKeyPatterns: ignoredKeyPatterns)
    }

    public convenience init(files urls: [URL], ignoredKeyPatterns: [String] = []) throws {
        let opened = try urls.map { try SafetensorsFile($0) }
        try self.init(files: opened, name: urls.map(\.path).joined(separator: ", "), ignoredKeyPatterns: ignoredKeyPatterns)
    }

    /// Throws `SafetensorsError.duplicateKey` when two shards hold the same key.
    public init(files: [SafetensorsFile], name: String, ignoredKeyPatterns: [String] = []) throws {
        var map: [String: SafetensorsFile] = [:]
        for f in files {
            for k in f.keys {
                if let other = map[k] { throw SafetensorsError.duplicateKey(path: "\(other.path) and \(f.path)", key: k) }
                map[k] = f
            }
        }
        self.files = files
        self.name = name
        self.ignoredKeyPatterns = ignoredKeyPatterns
        self.fileForKey = map
    }

    /// Opens the first of `candidates` present in `folder`; names ending in `.index.json` are
    /// shard indexes (`{"weight_map": {key: shard file}}`) whose shards are opened and cross-checked.
    public static func open(folder: URL, candidates: [String] = defaultCandidates,
                            ignoredKeyPatterns: [String] = []) throws -> SafetensorsWeightSource {
        for name in candidates {
            let url = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            if name.hasSuffix(".index.json") {
                return try openIndex(url, ignoredKeyPatterns: ignoredKeyPatterns)
            }
            return try SafetensorsWeightSource(file: url, ignoredKeyPatterns: ignoredKeyPatterns)
        }
        throw SafetensorsError.noWeights(folder: folder.path, candidates: candidates)
    }

    private static func openIndex(_ url: URL, ignoredKeyPatterns: [String]) throws -> SafetensorsWeightSource {
        let path = url.path
        let weightMap: [String: String]
        do {
            let data = try Data(contentsOf: url)
            guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = root["weight_map"] as? [String: String] else {
                throw SafetensorsError.invalidIndex(path: path, key: "weight_map", reason: "expected an object mapping tensor names to shard files")
            }
            weightMap = map
        } catch let e as SafetensorsError {
            throw e
        } catch {
            throw SafetensorsError.invalidIndex(path: path, key: "weight_map", reason: "cannot read index: \(error.localizedDescription)")
        }
        let folder = url.deletingLastPathComponent()
        var shards: [String: SafetensorsFile] = [:]
        for shard in Set(weightMap.values).sorted() {
            shards[shard] = try SafetensorsFile(folder.appendingPathComponent(shard))
        }
        // The index and the shards must agree, or a key could silently come from the wrong file.
        for (key, shard) in weightMap where !shards[shard]!.contains(key) {
            throw SafetensorsError.invalidIndex(path: path, key: key, reason: "the index places it in \(shard), which does not hold it")
        }
        let ordered = shards.keys.sorted().map { shards[$0]! }
        return try SafetensorsWeightSource(files: ordered, name: path, ignoredKeyPatterns: ignoredKeyPatterns)
    }

    /// All keys in the source, sorted.
    public var keys: [String] { fileForKey.keys.sorted() }

    public func contains(_ key: String) -> Bool { fileForKey[key] != nil }

    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        guard let file = fileForKey[key] else { throw WeightError.missing(key: key, file: name) }
        let found = try file.info(key).shape
        guard found == shape else {
            throw WeightError.shapeMismatch(key: key, expected: shape, found: found, file: file.path)
        }
        // An owned copy, and the file's pages dropped: resident memory holds each weight once.
        let t = try file.floatTensor(key, copy: true)
        file.releasePages(key)
        try NonFiniteTensorError.check(t, key: key, file: file.path)
        lock.lock(); used.insert(key); lock.unlock()
        return t
    }

    /// Shape and element type of `key` (throws `WeightError.missing`).
    public func info(_ key: String) throws -> (dtype: SafetensorsDType, shape: [Int]) {
        guard let file = fileForKey[key] else { throw WeightError.missing(key: key, file: name) }
        return try file.info(key)
    }

    /// The raw bytes of an integer tensor (packed weight codes), checked to be `dtype`; marks it used.
    public func bytes(_ key: String, dtype: SafetensorsDType) throws -> [UInt8] {
        guard let file = fileForKey[key] else { throw WeightError.missing(key: key, file: name) }
        let found = try file.info(key).dtype
        guard found == dtype else {
            throw SafetensorsError.invalidEntry(path: file.path, key: key, reason: "dtype \(found.rawValue), expected \(dtype.rawValue)")
        }
        let raw = try file.rawBytes(key)
        let copy = [UInt8](raw)
        file.releasePages(key)
        lock.lock(); used.insert(key); lock.unlock()
        return copy
    }

    /// The header metadata of the first file (sharded checkpoints repeat it).
    public var metadata: [String: String] { files.first?.metadata ?? [:] }

    /// Keys never requested and not covered by `ignoredKeyPatterns`, sorted.
    public var unusedKeys: [String] {
        lock.lock(); defer { lock.unlock() }
        return fileForKey.keys.filter { key in
            !used.contains(key) && !ignoredKeyPatterns.contains(where: { key.hasSuffix($0) })
        }.sorted()
    }

    public func finish() throws {
        let unused = unusedKeys
        if !unused.isEmpty { throw WeightError.unexpected(keys: unused, file: name) }
    }
}
