import MixDQCompute

/// Wraps a source and keeps every tensor handed out, in request order, so that building a model
/// from seeded random weights also yields its complete state dict (for writing model folders).
public final class RecordingWeightSource: WeightSource {
    public let base: WeightSource
    public private(set) var recorded: [(String, Tensor)] = []
    public init(_ base: WeightSource) { self.base = base }

    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        let t = try base.tensor(key, shape: shape)
        recorded.append((key, t))
        return t
    }
    public func contains(_ key: String) -> Bool { base.contains(key) }
    public func finish() throws { try base.finish() }
}
