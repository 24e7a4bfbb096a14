/// `torch.nn.Linear`: `y = x W^T + b` over the last axis.
public final class Linear: WeightLayer, @unchecked Sendable {
    public let path: String
    public let inFeatures: Int
    public let outFeatures: Int
    public private(set) var masterWeight: Tensor?
    public let bias: Tensor?
    public var role: LayerRole = .plain
    public var kernel: LinearKernel

    public init(path: String, weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2)
        self.path = path
        self.outFeatures = weight.shape[0]
        self.inFeatures = weight.shape[1]
        self.masterWeight = weight
        self.bias = bias
        self.kernel = BLASLinear(weight: weight, bias: bias)
    }

    public var parameterCount: Int { inFeatures * outFeatures + (bias?.count ?? 0) }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try OpProfiler.measure("linear") { try kernel.forward(x) } }

    public func usePrecision(_ precision: Precision) throws {
        guard let w = masterWeight else { return }
        switch precision {
        case .fp32: kernel = BLASLinear(weight: w, bias: bias)
        case .bf16:
            kernel = try DNNLMatmul(weight: w, bias: bias, precision: .bf16)
            masterWeight = nil   // the bf16 kernel holds its own packed copy
        }
    }

    public func releaseMasterWeight() { masterWeight = nil }

    /// fp32 on a oneDNN matmul with the weight packed now; the fp32 master is dropped.
    public func packForInference() throws {
        guard let w = masterWeight else { return }
        kernel = try DNNLMatmul(weight: w, bias: bias, precision: .fp32)
        masterWeight = nil
    }
}
