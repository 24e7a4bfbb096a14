/// The VAE's key-rename table: modern diffusers names (what the model's module paths use) to the
/// legacy spellings older checkpoints store.
///
/// diffusers renames these at load time for attention blocks built with `_from_deprecated_attn_block`
/// (the VAE mid blocks): `query`/`key`/`value`/`proj_attn` become `to_q`/`to_k`/`to_v`/`to_out.0`;
/// `group_norm` keeps its name. Such files may also hold the projections as 1x1-conv weights `[C,C,1,1]`.
public enum VAEKeyRules {
    /// Modern module name -> legacy module name, inside a VAE attention block.
    public static let legacyAttentionNames: [(modern: String, legacy: String)] = [
        ("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn"),
    ]

    /// The legacy spelling of a modern key, or nil when the key is not a renamed attention projection.
    /// `decoder.mid_block.attentions.0.to_out.0.bias` -> `decoder.mid_block.attentions.0.proj_attn.bias`.
    public static func legacyKey(for key: String) -> String? {
        guard let (block, module, param) = splitAttentionKey(key) else { return nil }
        guard let rule = legacyAttentionNames.first(where: { $0.modern == module }) else { return nil }
        return "\(block).\(rule.legacy).\(param)"
    }

    /// The modern spelling of a legacy key (the inverse of `legacyKey(for:)`), or nil.
    public static func modernKey(for key: String) -> String? {
        guard let (block, module, param) = splitAttentionKey(key) else { return nil }
        guard let rule = legacyAttentionNames.first(where: { $0.legacy == module }) else { return nil }
        return "\(block).\(rule.modern).\(param)"
    }

    /// True for the weight of an attention projection (modern spelling), the only tensors that may be
    /// stored as `[C,C,1,1]` and squeezed.
    public static func isAttentionProjectionWeight(_ key: String) -> Bool {
        guard let (_, module, param) = splitAttentionKey(key), param == "weight" else { return false }
        return legacyAttentionNames.contains { $0.modern == module }
    }

    /// `<...>.attentions.<n>.<module>.<weight|bias>` -> (`<...>.attentions.<n>`, module, param).
    /// Only names directly under an `attentions.<n>` block match, so no other `key`/`value` is touched.
    static func splitAttentionKey(_ key: String) -> (String, String, String)? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 5, let param = parts.last, param == "weight" || param == "bias" else { return nil }
        guard let a = parts.lastIndex(of: "attentions"), a + 2 < parts.count - 1, Int(parts[a + 1]) != nil else { return nil }
        let block = parts[...(a + 1)].joined(separator: ".")
        let module = parts[(a + 2)..<(parts.count - 1)].joined(separator: ".")
        return (block, module, param)
    }
}
