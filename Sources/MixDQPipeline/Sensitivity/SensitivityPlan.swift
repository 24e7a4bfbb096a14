import Foundation
import MixDQQuant

/// Which quantizer is perturbed: weight-only or activation-only (mixdq-method.md §6.2-6.3).
public enum SensitivityType: String, CaseIterable, Sendable {
    case weight, act
}

/// How a layer is scored: SSIM of final images (content) or SQNR of the UNet output (quality).
public enum SensitivityMetric: String, CaseIterable, Sendable {
    case ssim, sqnr
}

/// The layers × bits of one sensitivity run and the part of it this shard measures.
///
/// The run's layers are the model's layers (module order) in `group` whose path matches
/// `layersPattern`; shard I of N measures those at positions p with p % N == I, so the shards of
/// one run partition it whatever N is.
public struct SensitivityPlan: Equatable, Sendable {
    public let type: SensitivityType
    public let group: LayerGroup
    public let bits: [Int]
    public let layersPattern: String?
    /// nil: each layer by its group's metric (content SSIM, quality SQNR), as the original.
    public let metricOverride: SensitivityMetric?
    /// Every layer of the run, all shards, in model order.
    public let layers: [String]
    public let shard: Shard

    public init(type: SensitivityType, group: LayerGroup, bits: [Int], layersPattern: String?, metric: SensitivityMetric?,
                shard: Shard, modelLayers: [String], availableBits: [Int]) throws {
        guard !bits.isEmpty else { throw SensitivityError("--bits: give at least one bit width") }
        guard bits == Array(Set(bits)).sorted() else {
            throw SensitivityError("--bits \(bits.map(String.init).joined(separator: ",")): list distinct bit widths in ascending order (they are the score columns)")
        }
        let missing = bits.filter { !availableBits.contains($0) }
        guard missing.isEmpty else {
            throw SensitivityError("--bits: the checkpoint has no parameters for \(missing.map(String.init).joined(separator: ", ")) bit(s) "
                                   + "(it holds \(availableBits.map(String.init).joined(separator: ", ")); see mixed_precision in the config)")
        }
        var inGroup = modelLayers.filter { group.contains($0) }
        if let layersPattern {
            // The pattern is part of the run's identity, one header line of the score files.
            guard !layersPattern.contains(where: \.isNewline) else { throw SensitivityError("--layers: the pattern must be one line") }
            let regex: NSRegularExpression
            do { regex = try NSRegularExpression(pattern: layersPattern) } catch {
                throw SensitivityError("--layers '\(layersPattern)': not a valid regular expression (\(error.localizedDescription))")
            }
            inGroup = inGroup.filter { SensitivityPlan.matches(regex, $0) || SensitivityPlan.matches(regex, "model." + $0) }
            guard !inGroup.isEmpty else {
                throw SensitivityError("--layers '\(layersPattern)' matches no layer of the \(group.rawValue) group "
                                       + "(paths look like model.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k)")
            }
        }
        guard !inGroup.isEmpty else { throw SensitivityError("the model has no layer in the \(group.rawValue) group") }
        self.type = type; self.group = group; self.bits = bits; self.layersPattern = layersPattern
        metricOverride = metric; layers = inGroup; self.shard = shard
    }

    static func matches(_ regex: NSRegularExpression, _ s: String) -> Bool {
        regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    /// The layers this shard measures, in model order.
    public var shardLayers: [String] { layers.enumerated().filter { shard.owns($0.offset) }.map(\.element) }

    public func metric(of layer: String) -> SensitivityMetric {
        metricOverride ?? (LayerGroup.isContent(layer) ? .ssim : .sqnr)
    }

    /// Whether any layer of the run (all shards) is scored by `metric`: its inputs are then part
    /// of the run's identity.
    public func runUses(_ metric: SensitivityMetric) -> Bool { layers.contains { self.metric(of: $0) == metric } }

    /// Whether any layer of this shard is scored by `metric`: its inputs are then prepared.
    public func shardUses(_ metric: SensitivityMetric) -> Bool { shardLayers.contains { self.metric(of: $0) == metric } }
}
