import MixDQCompute

/// Presents a VAE checkpoint under the modern key names the model's module paths use.
///
/// A key the file lacks is looked up under its legacy spelling (`VAEKeyRules`), and an attention
/// projection stored as a 1x1-conv weight `[C,C,1,1]` is squeezed to the Linear's `[C,C]`.
/// `finish()` tolerates unused keys under `unusedPrefixes` (the encoder half when only the decoder is built).
public final class VAEWeightSource: WeightSource {
    public let base: WeightSource
    public let unusedPrefixes: [String]

    public init(_ base: WeightSource, unusedPrefixes: [String] = []) {
        self.base = base
        self.unusedPrefixes = unusedPrefixes
    }

    /// The key as the file spells it: modern if present, else legacy if present, else the modern key
    /// (so a missing tensor is reported under the name the model uses).
    public func storedKey(_ key: String) -> String {
        if base.contains(key) { return key }
        if let legacy = VAEKeyRules.legacyKey(for: key), base.contains(legacy) { return legacy }
        return key
    }

    public func contains(_ key: String) -> Bool { base.contains(storedKey(key)) }

    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        let stored = storedKey(key)
        do {
            return try base.tensor(stored, shape: shape)
        } catch let WeightError.shapeMismatch(_, expected, found, _)
                    where VAEKeyRules.isAttentionProjectionWeight(key) && found == expected + [1, 1] {
            return try base.tensor(stored, shape: found).reshaped(shape)   // [C,C,1,1] -> [C,C]
        }
    }

    public func finish() throws {
        do {
            try base.finish()
        } catch let WeightError.unexpected(keys, file) {
            let left = keys.filter { k in !unusedPrefixes.contains { k.hasPrefix($0) } }
            if !left.isEmpty { throw WeightError.unexpected(keys: left, file: file) }
        }
    }
}
