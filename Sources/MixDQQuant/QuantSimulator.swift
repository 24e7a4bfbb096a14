import MixDQCompute

/// MixDQ quantization over a model's layer registry: one `QuantizedLayer` per Conv2d / Linear (its
/// site, keyed by diffusers path), the explicit calibration steps of `ptq` (no hidden "recalibrate
/// until init_done" state), and the seam where a backend's kernels are installed in the layers.
///
/// It starts on the fake-quant backend (calibration, `ptq`, the search and `--backend fake` run
/// there: bits and switches may change between calls). `deploy(_:)` rebuilds every layer on another
/// backend for the bits in force (oneDNN INT8, later CUDA). Either way BOS-aware K/V layers are
/// wrapped in `BOSAwareLinear`, the one place that policy lives.
public final class QuantSimulator {
    public let settings: QuantSettings
    public let layers: [QuantizedLayer]
    private let byPath: [String: QuantizedLayer]
    /// The fake-quant kernels installed at construction (until `deploy`).
    private var fakeKernels: [String: AnyObject] = [:]
    public private(set) var backendName = "fake"

    public init(registry: LayerRegistry, settings: QuantSettings) throws {
        self.settings = settings
        layers = registry.layers.map { QuantizedLayer($0, settings: settings) }
        byPath = Dictionary(uniqueKeysWithValues: layers.map { ($0.path, $0) })
        let fake = FakeQuantBackend()
        for l in layers {
            let kernel = try fake.makeKernel(for: l)
            switch kernel {
            case .linear(let k as FakeQuantLinearKernel):
                fakeKernels[l.path] = k
                if l.bosAware {
                    let token0 = Token0Outputs(path: l.path, outFeatures: l.site.outChannels, fp: FakeQuantFPPath(k))
                    try l.layer.install(.linear(BOSAwareLinear(path: l.path, quantized: k, token0: token0,
                                                               active: { [unowned l] in l.weightEnabled || l.activationEnabled })))
                    continue
                }
            case .conv2d(let k as FakeQuantConv2dKernel): fakeKernels[l.path] = k
            default: break
            }
            try l.layer.install(kernel)
        }
    }

    public subscript(path: String) -> QuantizedLayer? { byPath[path] }
    public var paths: [String] { layers.map(\.path) }

    /// Puts the FP kernels back (the model runs as if never quantized).
    public func uninstall() { for l in layers { l.layer.uninstallQuantized() } }

    /// Off: fake-quantized weights are recomputed per call instead of cached (full-size models,
    /// where a cached fp32 copy per layer would double memory).
    public func setCachesQuantizedWeights(_ on: Bool) { for l in layers { l.cachesQuantizedWeights = on } }

    /// Fake quant with fixed bit widths: every weight-quantized layer keeps only its fake-quantized
    /// weight at the current bit width and drops the FP one (except the BOS-aware K/V layers, whose
    /// token 0 runs FP). Bits cannot change afterwards.
    public func freezeWeights() throws {
        for l in layers where l.weightEnabled {
            l.cachesQuantizedWeights = true
            if let k = fakeKernels[l.path] as? FakeQuantLinearKernel {
                try k.freeze()
            } else if let k = fakeKernels[l.path] as? FakeQuantConv2dKernel {
                try k.freeze()
            } else {
                continue
            }
            l.releaseWeightCopies()
            l.layer.releaseFP()   // the frozen kernel holds the quantized weight (and BOS layers their FP kernel)
        }
    }

    /// The layers `backend` cannot run as configured now, with the reason for each.
    public func unsupported(on backend: QuantBackend) -> [(path: String, reason: String)] {
        layers.compactMap { l in backend.unsupportedReason(l).map { (l.path, $0) } }
    }

    /// Rebuilds every layer on `backend` for the bits and switches in force, then drops the fp32
    /// weights the new kernels no longer need. Throws, before changing anything, naming the layers
    /// the backend cannot run. One-way: reload the model to change bits afterwards.
    public func deploy(_ backend: QuantBackend) throws {
        let missing = unsupported(on: backend)
        if let first = missing.first {
            throw QuantBackendError(backend: backend.name, path: first.path,
                                    reason: first.reason + (missing.count > 1 ? " (and \(missing.count - 1) more layer(s))" : ""))
        }
        // Layer by layer, so the fp32 weights go as the new kernels come (peak: one layer's worth more).
        for l in layers {
            var kernel = try backend.makeKernel(for: l)
            if l.bosAware, l.weightEnabled || l.activationEnabled, case .linear(let k) = kernel {
                let fp = try DNNLMatmul(weight: l.layer.masterWeight.orThrow(FrozenLayerError(path: l.path)), bias: l.layer.bias,
                                        precision: .fp32)
                kernel = .linear(BOSAwareLinear(path: l.path, quantized: k,
                                                token0: Token0Outputs(path: l.path, outFeatures: l.site.outChannels, fp: fp)))
            }
            try l.layer.install(kernel)
            l.releaseWeightCopies()
            l.layer.releaseFP()
        }
        fakeKernels = [:]
        backendName = backend.name
    }

    /// Step 1 of PTQ: per-channel weight parameters for every bit width.
    public func calibrateWeights() throws { for l in layers { try l.calibrateWeights() } }

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

extension Optional {
    func orThrow(_ error: @autoclosure () -> Error) throws -> Wrapped {
        guard let self else { throw error() }
        return self
    }
}
