/// `torch.nn.Conv2d` (square kernel, symmetric padding, groups 1) on NHWC feature maps.
public final class Conv2d: WeightLayer, @unchecked Sendable {
    public let path: String
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public private(set) var masterWeight: Tensor?
    public let bias: Tensor?
    public var role: LayerRole = .plain
    public var inputHook: ((Tensor) throws -> Void)?
    /// What runs: the FP kernel, or a quantization backend's kernel while one is installed.
    public private(set) var kernel: Conv2dKernel
    private var fp: Conv2dKernel
    public private(set) var isQuantized = false
    /// Inference-only layers (`ModuleLoader.packForInference`) drop the fp32 OIHW copy once oneDNN
    /// holds packed weights.
    public var releasesMasterAfterPacking = false

    public init(path: String, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) throws {
        precondition(weight.rank == 4)
        self.path = path
        self.outChannels = weight.shape[0]
        self.inChannels = weight.shape[1]
        self.kernelSize = weight.shape[2]
        self.stride = stride
        self.padding = padding
        self.masterWeight = weight
        self.bias = bias
        fp = try DNNLConvolution(weight: weight, bias: bias, stride: stride, padding: padding, precision: .fp32)
        kernel = fp
    }

    /// A layer whose kernel comes ready-made (a deployable quantized checkpoint): no fp32 weight.
    public init(path: String, inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int,
                bias: Tensor?, quantizedKernel: Conv2dKernel) {
        self.path = path
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.bias = bias
        fp = quantizedKernel
        kernel = quantizedKernel
        isQuantized = true
    }

    public var geometry: LayerGeometry {
        .conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride, padding: padding)
    }
    public var parameterCount: Int { outChannels * inChannels * kernelSize * kernelSize + (bias?.count ?? 0) }
    public var fpKernel: InstalledKernel { .conv2d(fp) }

    public func callAsFunction(_ x: FeatureMap) throws -> FeatureMap {
        try inputHook?(x.tensor)
        let y = try OpProfiler.measure("conv") { try kernel.forward(x) }
        releaseMasterIfPacked()
        return y
    }

    /// `self(x) + residual` with the add fused into the kernel where it can be (the residual has
    /// the output's shape).
    public func callAsFunction(_ x: FeatureMap, adding residual: FeatureMap) throws -> FeatureMap {
        try inputHook?(x.tensor)
        let y = try OpProfiler.measure("conv") { try kernel.forward(x, adding: residual) }
        releaseMasterIfPacked()
        return y
    }

    private func releaseMasterIfPacked() {
        if releasesMasterAfterPacking, masterWeight != nil, !isQuantized, let k = fp as? DNNLConvolution {
            k.releaseMasterWeight()
            masterWeight = nil
        }
    }

    public func usePrecision(_ precision: Precision) throws {
        guard !isQuantized else { throw LayerStateError(path: path, reason: "a quantized kernel is installed; precision applies to FP layers") }
        guard let w = masterWeight else { return }
        fp = try DNNLConvolution(weight: w, bias: bias, stride: stride, padding: padding, precision: precision)
        kernel = fp
        if precision == .bf16 { masterWeight = nil }
    }

    public func install(_ installed: InstalledKernel) throws {
        guard case .conv2d(let k) = installed else { throw LayerStateError(path: path, reason: "a Linear kernel cannot run a convolution") }
        kernel = k
        isQuantized = true
    }

    public func uninstallQuantized() {
        kernel = fp
        isQuantized = false
    }

    public func releaseMasterWeight() { masterWeight = nil }

    public func releaseFP() {
        guard isQuantized else { return }
        fp = kernel
        masterWeight = nil
    }
}
