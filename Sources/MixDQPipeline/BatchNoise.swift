import MixDQCompute
import MixDQModels

/// One torch generator per image: image i of a run uses `torch.Generator().manual_seed(seed + i)`,
/// as diffusers does when given a list of generators. Every image is then reproducible on its own,
/// whatever the batch size, shard or resume point.
public struct BatchNoise: NoiseSource {
    public var generators: [TorchGenerator]

    public init(seeds: [UInt64]) { generators = seeds.map { TorchGenerator(seed: $0) } }

    /// `[B, ...]` noise: sample b is drawn from generator b.
    public mutating func randn(_ shape: [Int]) -> Tensor {
        precondition(shape.first == generators.count, "noise batch \(shape) vs \(generators.count) generators")
        let per = Array(shape.dropFirst())
        let n = per.reduce(1, *)
        let out = Tensor(uninitializedShape: shape)
        for b in 0..<generators.count {
            let t = generators[b].randn([1] + per)
            (out.data + b * n).update(from: t.data, count: n)
        }
        return out
    }
}
