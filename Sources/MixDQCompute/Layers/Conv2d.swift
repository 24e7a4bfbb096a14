/// `torch.nn.Conv2d` (square kernel, symmetric padding, groups 1) on NHWC feature maps.
public final class Conv2d: WeightLayer, @unchecked Sendable {
    public let path: String
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public private(set) var masterWeight: Tensor?
    public let bias: Tensor?
    public var role: LayerRole = .plain
    public var kernel: Conv2dKernel
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
        self.kernel = try DNNLConvolution(weight: weight, bias: bias, stride: stride, padding: padding, precision: .fp32)
    }

    public var parameterCount: Int { outChannels * inChannels * kernelSize * kernelSize + (bias?.count ?? 0) }

    public func callAsFunction(_ x: FeatureMap) throws -> FeatureMap {
        let y = try OpProfiler.measure("conv") { try kernel.forward(x) }
        if releasesMasterAfterPacking, masterWeight != nil, let k = kernel as? DNNLConvolution {
            k.releaseMasterWeight()
            masterWeight = nil
        }
        return y
    }

    public func usePrecision(_ precision: Precision) throws {
        guard let w = masterWeight else { return }
        kernel = try DNNLConvolution(weight: w, bias: bias, stride: stride, padding: padding, precision: precision)
        if precision == .bf16 { masterWeight = nil }
    }

    public func releaseMasterWeight() { masterWeight = nil }
}
