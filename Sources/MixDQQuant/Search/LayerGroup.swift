/// MixDQ's metric-decoupled layer groups (mixdq-method.md §6.1): a layer whose path contains
/// `attn2` or `ff` is content-related (scored by SSIM), every other one quality-related (SQNR).
public enum LayerGroup: String, CaseIterable, Sendable {
    case content, quality, all

    public static func isContent(_ path: String) -> Bool { path.contains("attn2") || path.contains("ff") }

    public func contains(_ path: String) -> Bool {
        switch self {
        case .content: return LayerGroup.isContent(path)
        case .quality: return !LayerGroup.isContent(path)
        case .all: return true
        }
    }
}
