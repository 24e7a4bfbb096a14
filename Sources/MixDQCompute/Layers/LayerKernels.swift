import Foundation

/// What a `Linear` runs: `y = x W^T + b` over the last axis of `x`.
///
/// This and `Conv2dKernel` are the single place where precision and quantization plug in:
/// fp32 (oneDNN / OpenBLAS), bf16 (oneDNN), and the quantization backends of MixDQQuant (fake
/// quant, oneDNN INT8, packed low-bit), installed through `WeightLayer.install(_:)`.
public protocol LinearKernel: AnyObject {
    func forward(_ x: Tensor) throws -> Tensor
    /// `forward(x) + residual` (the output's shape); fused where the kernel can.
    func forward(_ x: Tensor, adding residual: Tensor) throws -> Tensor
    /// `forward(GEGLU(proj)) (+ residual)` for a `[..., 2*inFeatures]` projection (diffusers'
    /// FeedForward): fused where the kernel can, bit-identical to GEGLU then forward.
    func forward(gegluOf proj: Tensor, adding residual: Tensor?) throws -> Tensor
    /// True for a kernel that rounds its input to bf16 anyway (a bf16 matmul): it can take a
    /// `BF16Activation` shared with other layers instead.
    var takesBF16Input: Bool { get }
    /// `forward` of an input already rounded to bf16; only called where `takesBF16Input`.
    func forward(bf16 x: BF16Activation) throws -> Tensor
}

/// What a `Conv2d` runs on an NHWC feature map.
public protocol Conv2dKernel: AnyObject {
    func forward(_ x: FeatureMap) throws -> FeatureMap
    /// `forward(x) + residual` (the output's shape); fused where the kernel can.
    func forward(_ x: FeatureMap, adding residual: FeatureMap) throws -> FeatureMap
}

extension DNNLConvolution: Conv2dKernel {}

/// Fusions a kernel may offer. The defaults run the plain forward and then the fp32 op, so every
/// kernel supports them. A kernel fuses where that saves a pass (an integer kernel's dequantizing
/// epilogue can add the residual as it writes); an FP kernel that fuses must match the default bit
/// for bit, since fake quant with quantization off has to equal fp-infer exactly. The oneDNN
/// fp32/bf16 kernels keep the default: a sum post-op needs the residual copied into the output
/// first, the same memory traffic as the separate add (measured: no faster), and oneDNN's
/// non-brgemm kernels then add in another order.
extension LinearKernel {
    public func forward(_ x: Tensor, adding residual: Tensor) throws -> Tensor {
        try addResidual(residual, to: forward(x))
    }

    public func forward(gegluOf proj: Tensor, adding residual: Tensor?) throws -> Tensor {
        try forwardUnfused(gegluOf: proj, adding: residual)
    }

    /// GEGLU in fp32, then `forward` (+ residual): the default fusion's meaning, for kernels that
    /// fuse only in some modes.
    public func forwardUnfused(gegluOf proj: Tensor, adding residual: Tensor?) throws -> Tensor {
        let h = Ops.geglu(proj)
        if let residual { return try forward(h, adding: residual) }
        return try forward(h)
    }

    /// `y += residual` (nil: nothing), the residual checked against the output's shape.
    public func addResidual(_ residual: Tensor?, to y: Tensor) throws -> Tensor {
        guard let residual else { return y }
        guard y.shape == residual.shape else { throw ResidualShapeError(output: y.shape, residual: residual.shape) }
        Ops.addInPlace(y, residual)
        return y
    }

    public var takesBF16Input: Bool { false }

    public func forward(bf16 x: BF16Activation) throws -> Tensor {
        throw LayerStateError(path: "\(type(of: self))", reason: "this kernel does not take bf16 input")
    }
}

extension Conv2dKernel {
    public func forward(_ x: FeatureMap, adding residual: FeatureMap) throws -> FeatureMap {
        let y = try forward(x)
        guard y.tensor.shape == residual.tensor.shape else {
            throw ResidualShapeError(output: y.tensor.shape, residual: residual.tensor.shape)
        }
        Ops.addInPlace(y.tensor, residual.tensor)
        return y
    }
}

/// A residual whose shape is not the layer output's.
public struct ResidualShapeError: Error, CustomStringConvertible, LocalizedError {
    public let output: [Int], residual: [Int]
    public init(output: [Int], residual: [Int]) { self.output = output; self.residual = residual }
    public var description: String { "residual \(residual) does not match the layer output \(output)" }
    public var errorDescription: String? { description }
}

/// The shape of a quantization site, known without its weight (a deployable quantized model never
/// holds fp32 weights).
public enum LayerGeometry: Equatable, Sendable {
    case linear(inFeatures: Int, outFeatures: Int)
    case conv2d(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int)

    public var inChannels: Int {
        switch self { case .linear(let i, _): return i; case .conv2d(let i, _, _, _, _): return i }
    }
    public var outChannels: Int {
        switch self { case .linear(_, let o): return o; case .conv2d(_, let o, _, _, _): return o }
    }
    /// Kernel taps per input channel (1 for a Linear).
    public var taps: Int {
        switch self { case .linear: return 1; case .conv2d(_, _, let k, _, _): return k * k }
    }
    /// Length of one weight row (one output channel): in·k·k, OIHW order.
    public var rowLength: Int { inChannels * taps }
    /// The PyTorch weight shape.
    public var weightShape: [Int] {
        switch self {
        case .linear(let i, let o): return [o, i]
        case .conv2d(let i, let o, let k, _, _): return [o, i, k, k]
        }
    }
}

/// A kernel a quantization backend built for a layer (the variant matches the layer's kind).
public enum InstalledKernel {
    case linear(LinearKernel)
    case conv2d(Conv2dKernel)
}

/// A layer asked to do what its installed quantized kernel rules out.
public struct LayerStateError: Error, CustomStringConvertible {
    public let path: String, reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }
}

/// A quantization site: every Conv2d and Linear of a model, identified by its diffusers path.
public protocol WeightLayer: AnyObject {
    /// The diffusers / transformers module path, e.g. `down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k`.
    var path: String { get }
    var role: LayerRole { get }
    var geometry: LayerGeometry { get }
    /// The fp32 weight in PyTorch layout (`[out, in]` or `[out, in, k, k]`), nil once released or
    /// for layers loaded from a deployable quantized checkpoint.
    var masterWeight: Tensor? { get }
    var bias: Tensor? { get }
    var parameterCount: Int { get }
    /// Called with every input before the kernel runs (a Conv2d's input as its NHWC tensor): how the
    /// search and calibration tools see per-layer inputs without touching the kernels.
    var inputHook: ((Tensor) throws -> Void)? { get set }
    /// The FP kernel this layer runs when no quantized kernel is installed.
    var fpKernel: InstalledKernel { get }
    /// True while a quantization backend's kernel is installed.
    var isQuantized: Bool { get }
    /// Switches the FP kernel (fp32 / bf16). Throws on a quantized layer: its backend owns the kernel.
    func usePrecision(_ precision: Precision) throws
    /// Runs `kernel` (from a quantization backend) in place of the FP kernel; throws on a kind mismatch.
    func install(_ kernel: InstalledKernel) throws
    /// Puts the FP kernel back.
    func uninstallQuantized()
    /// Drops the layer's reference to its fp32 weight (a quantized kernel holds what it needs).
    func releaseMasterWeight()
    /// Drops the fp32 weight and the FP kernel: the installed quantized kernel is all the layer keeps.
    func releaseFP()
}

/// What the model knows about a layer that a quantizer needs.
public enum LayerRole: Equatable, Sendable {
    case plain
    /// `attn2.to_k` / `attn2.to_v`: the input is the text context `[B, 77, D]` whose token 0 (BOS)
    /// is an identical, huge outlier for every prompt (MixDQ's BOS-aware quantization).
    case crossAttentionKeyValue
    /// An up-block `conv_shortcut` whose input is `concat(h, skip)`: the first `split` channels
    /// come from the upsampled hidden state, the rest from the skip connection.
    case concatShortcut(split: Int)
}
