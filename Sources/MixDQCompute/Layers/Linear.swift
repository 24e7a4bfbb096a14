/// `torch.nn.Linear`: `y = x W^T + b` over the last axis.
public final class Linear: WeightLayer, @unchecked Sendable {
    public let path: String
    public let inFeatures: Int
    public let outFeatures: Int
    public private(set) var masterWeight: Tensor?
    public let bias: Tensor?
    public var role: LayerRole = .plain
    public var inputHook: ((Tensor) throws -> Void)?
    /// What runs: the FP kernel, or a quantization backend's kernel while one is installed.
    public private(set) var kernel: LinearKernel
    private var fp: LinearKernel
    public private(set) var isQuantized = false

    public init(path: String, weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2)
        self.path = path
        self.outFeatures = weight.shape[0]
        self.inFeatures = weight.shape[1]
        self.masterWeight = weight
        self.bias = bias
        fp = BLASLinear(weight: weight, bias: bias)
        kernel = fp
    }

    /// A layer whose kernel comes ready-made (a deployable quantized checkpoint): no fp32 weight.
    public init(path: String, inFeatures: Int, outFeatures: Int, bias: Tensor?, quantizedKernel: LinearKernel) {
        self.path = path
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.bias = bias
        fp = quantizedKernel
        kernel = quantizedKernel
        isQuantized = true
    }

    public var geometry: LayerGeometry { .linear(inFeatures: inFeatures, outFeatures: outFeatures) }
    public var parameterCount: Int { inFeatures * outFeatures + (bias?.count ?? 0) }
    public var fpKernel: InstalledKernel { .linear(fp) }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try inputHook?(x)
        return try OpProfiler.measure("linear") { try kernel.forward(x) }
    }

    /// Whether `self(x, sharing:)` would use a shared bf16 copy (a bf16 kernel and no input hook,
    /// which has to see the fp32 input).
    public var takesBF16Input: Bool { inputHook == nil && kernel.takesBF16Input }

    /// `self(x)`, reading `rounded` (bf16(x), shared with other layers) where the kernel takes it.
    public func callAsFunction(_ x: Tensor, sharing rounded: BF16Activation?) throws -> Tensor {
        guard let rounded, takesBF16Input else { return try self(x) }
        guard rounded.shape == x.shape else {
            throw LayerStateError(path: path, reason: "the shared bf16 input \(rounded.shape) is not this input \(x.shape)")
        }
        return try OpProfiler.measure("linear") { try kernel.forward(bf16: rounded) }
    }

    /// `self(x) + residual` with the add fused into the kernel where it can be (the residual has
    /// the output's shape).
    public func callAsFunction(_ x: Tensor, adding residual: Tensor) throws -> Tensor {
        try inputHook?(x)
        return try OpProfiler.measure("linear") { try kernel.forward(x, adding: residual) }
    }

    /// `self(GEGLU(proj)) (+ residual)`: GEGLU fused into the kernel where it can be (the integer
    /// kernel quantizes GEGLU's output block by block, never writing it out in fp32). An input hook
    /// sees the GEGLU output, so with one installed GEGLU runs on its own first.
    public func callAsFunction(gegluOf proj: Tensor, adding residual: Tensor? = nil) throws -> Tensor {
        guard proj.rank >= 1, proj.shape.last == 2 * inFeatures else {
            throw LinearShapeError(expected: 2 * inFeatures, got: proj.shape)
        }
        if inputHook != nil {
            let h = Ops.geglu(proj)
            if let residual { return try self(h, adding: residual) }
            return try self(h)
        }
        return try OpProfiler.measure("linear") { try kernel.forward(gegluOf: proj, adding: residual) }
    }

    public func usePrecision(_ precision: Precision) throws {
        guard !isQuantized else { throw LayerStateError(path: path, reason: "a quantized kernel is installed; precision applies to FP layers") }
        guard let w = masterWeight else { return }
        switch precision {
        case .fp32: fp = BLASLinear(weight: w, bias: bias)
        case .bf16:
            fp = try DNNLMatmul(weight: w, bias: bias, precision: .bf16)
            masterWeight = nil   // the bf16 kernel holds its own packed copy
        }
        kernel = fp
    }

    public func install(_ installed: InstalledKernel) throws {
        guard case .linear(let k) = installed else { throw LayerStateError(path: path, reason: "a convolution kernel cannot run a Linear") }
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

    /// fp32 on a oneDNN matmul with the weight packed now; the fp32 master is dropped.
    public func packForInference() throws {
        guard let w = masterWeight, !isQuantized else { return }
        fp = try DNNLMatmul(weight: w, bias: bias, precision: .fp32)
        kernel = fp
        masterWeight = nil
    }
}
