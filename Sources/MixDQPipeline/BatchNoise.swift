import MixDQCompute
import MixDQModels

/// One torch generator per image: image i of a run uses `torch.Generator().manual_seed(seed + i)`,
/// as diffusers does when given a list of generators. Every image is then reproducible on its own,
/// whatever the batch size, shard or resume point.
///
/// Shapes come from the job (one generator per image of the batch) and from image sizes that the
/// CLI and config loader bound (`GenerationLimits`), so no size reaching here can overflow.
public struct BatchNoise: NoiseSource {
    public var generators: [TorchGenerator]

    public init(seeds: [UInt64]) { generators = seeds.map { TorchGenerator(seed: $0) } }

    /// `[B, ...]` noise: sample b is drawn from generator b, exactly as `generators[b].randn([1, ...])`
    /// would, filled in place (no per-sample tensor and copy).
    public mutating func randn(_ shape: [Int]) -> Tensor {
        // A programming invariant, not an input: callers build one generator per batch sample.
        precondition(shape.first == generators.count, "noise batch \(shape) vs \(generators.count) generators")
        let out = Tensor(uninitializedShape: shape)
        let n = generators.isEmpty ? 0 : out.count / generators.count
        for b in 0..<generators.count {
            generators[b].fillNormal(UnsafeMutableBufferPointer(start: out.data + b * n, count: n))
        }
        return out
    }
}
