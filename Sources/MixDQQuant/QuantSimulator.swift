import MixDQCompute

/// MixDQ's quantization simulator over a model's layer registry: one `QuantizedLayer` per
/// Conv2d / Linear (keyed by diffusers path), fake-quant kernels installed in their place, and
/// the explicit calibration steps of `ptq` (no hidden "recalibrate until init_done" state).
public final class QuantSimulator {
    public let settings: QuantSettings
    public let layers: [QuantizedLayer]
    private let byPath: [String: QuantizedLayer]

    public init(registry: LayerRegistry, settings: QuantSettings) {
        self.settings = settings
        var layers: [QuantizedLayer] = []
        for layer in registry.layers {
            let state = QuantizedLayer(layer, settings: settings)
            if let linear = layer as? Linear {
                linear.kernel = FakeQuantLinearKernel(state: state, fp: linear.kernel)
            } else if let conv = layer as? Conv2d {
                conv.kernel = FakeQuantConv2dKernel(state: state, fp: conv.kernel, stride: conv.stride, padding: conv.padding)
            }
            layers.append(state)
        }
        self.layers = layers
        byPath = Dictionary(uniqueKeysWithValues: layers.map { ($0.path, $0) })
    }

    public subscript(path: String) -> QuantizedLayer? { byPath[path] }

    /// Puts the FP kernels back (the model runs as if never quantized).
    public func uninstall() {
        for l in layers {
            if let linear = l.layer as? Linear, let k = linear.kernel as? FakeQuantLinearKernel, let o = k.original { linear.kernel = o }
            if let conv = l.layer as? Conv2d, let k = conv.kernel as? FakeQuantConv2dKernel, let fp = k.fp { conv.kernel = fp }
        }
    }

    /// Off: fake-quantized weights are recomputed per call instead of cached (full-size models,
    /// where a cached fp32 copy per layer would double memory).
    public func setCachesQuantizedWeights(_ on: Bool) { for l in layers { l.cachesQuantizedWeights = on } }

    /// For inference with fixed bit widths: every weight-quantized layer keeps only its
    /// fake-quantized weight at the current bit width and drops the FP one (except the BOS-aware
    /// K/V layers, whose token 0 runs FP). Bits cannot change afterwards.
    public func freezeWeights() throws {
        for l in layers where l.weightEnabled {
            l.cachesQuantizedWeights = true
            if let linear = l.layer as? Linear, let k = linear.kernel as? FakeQuantLinearKernel {
                try k.freeze()   // BOS layers pack their FP weight for token 0 first
                l.releaseWeightCopies()
                linear.releaseMasterWeight()
            } else if let conv = l.layer as? Conv2d, let k = conv.kernel as? FakeQuantConv2dKernel {
                try k.freeze()
                l.releaseWeightCopies()
                conv.releaseMasterWeight()
            }
        }
    }
    public var paths: [String] { layers.map(\.path) }

    /// Step 1 of PTQ: per-channel weight parameters for every bit width.
    public func calibrateWeights() { for l in layers { l.calibrateWeights() } }

    /// Turns weight / activation fake quantization on or off for every layer.
    public func setQuantState(weight: Bool, activation: Bool) {
        for l in layers { l.weightEnabled = weight; l.activationEnabled = activation }
    }

    /// Step 2 of PTQ: while on, each forward folds its input ranges into the observers.
    public func setCalibratingActivations(_ on: Bool) { for l in layers { l.calibratingActivations = on } }

    /// Layers run fully FP (weights and activations), as the original's `--act_protect` does.
    public func protect(_ paths: [String], source: String = "act-protect list") throws {
        try BitConfig.checkKnown(paths, in: self, source: source)
        for p in paths { byPath[p]!.weightEnabled = false; byPath[p]!.activationEnabled = false }
    }

    /// Applies per-layer bit widths (a MixDQ mixed-precision YAML, `model.` prefix stripped).
    public func applyWeightBits(_ bits: BitConfig) throws {
        try bits.check(against: self)
        for (p, b) in bits.bits { byPath[p]!.weightBits = b }
    }

    public func applyActivationBits(_ bits: BitConfig) throws {
        try bits.check(against: self)
        for (p, b) in bits.bits { byPath[p]!.activationBits = b }
    }
}
