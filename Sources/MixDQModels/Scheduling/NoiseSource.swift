import MixDQCompute

/// Where a sampler's Gaussian noise comes from.
///
/// `TorchGenerator` draws the same stream as torch's CPU generator; tests inject the exact
/// tensors diffusers used instead (sdxl-architecture.md §7: "inject the noise").
public protocol NoiseSource {
    /// Standard normal noise of `shape`, drawn like `torch.randn(shape, generator=g)`.
    mutating func randn(_ shape: [Int]) -> Tensor
}

/// Replays fixed tensors in order; each draw must ask for the stored tensor's shape.
public struct InjectedNoise: NoiseSource {
    public private(set) var tensors: [Tensor]
    /// How many tensors have been handed out.
    public private(set) var drawn = 0

    public init(_ tensors: [Tensor]) {
        self.tensors = tensors
    }

    public mutating func randn(_ shape: [Int]) -> Tensor {
        precondition(drawn < tensors.count, "InjectedNoise: draw \(drawn + 1) requested but only \(tensors.count) tensors were injected")
        let t = tensors[drawn]
        precondition(t.shape == shape, "InjectedNoise: draw \(drawn + 1) asks for \(shape) but the injected tensor is \(t.shape)")
        drawn += 1
        return t.copy()
    }
}
