import MixDQCompute

/// What turns a quantization site (with its calibrated state) into an executable layer kernel.
///
/// Backends see only the site's geometry, its bit widths, its weight codes or fake-quantized weight
/// and its activation parameters. The policies MixDQ adds on top, BOS-aware K/V (token 0 in FP) and
/// split shortcuts (two quantized parts), are applied by `QuantSimulator` around every backend's
/// kernels, once: see `BOSAwareLinear` and `QuantSite.activationParts`.
public protocol QuantBackend {
    /// As the CLI spells it (`fake`, `int8`).
    var name: String { get }
    /// Why the layer, as configured now (bits, enabled parts, symmetry), has no path on this backend;
    /// nil when it has one.
    func unsupportedReason(_ layer: QuantizedLayer) -> String?
    /// The kernel for the layer's current configuration. Token 0 of BOS-aware layers may come out
    /// as anything: the seam overwrites it.
    func makeKernel(for layer: QuantizedLayer) throws -> InstalledKernel
}

/// A backend asked for a layer it cannot run.
public struct QuantBackendError: Error, CustomStringConvertible {
    public let backend: String, path: String, reason: String
    public var description: String { "--backend \(backend): layer '\(path)' has no \(backend) path: \(reason)" }
}

/// A Linear kernel that can leave some rows out of its activation statistics, because the seam
/// replaces their output (BOS token 0). Backends that keep no statistics need not adopt it.
public protocol RowExcludingLinearKernel: LinearKernel {
    func forward(_ x: Tensor, excludingRows excluded: (Int) -> Bool) throws -> Tensor
}
