/// Builds layers from a `WeightSource` while tracking the module path, so that every layer's
/// identity is its diffusers / transformers path and every Conv2d/Linear lands in one registry.
///
/// Model code says `let q = try loader.child("attn1").linear("to_q", in: c, out: c, bias: false)`;
/// the loader reads `<prefix>.attn1.to_q.weight` with the expected shape.
public final class ModuleLoader {
    public let weights: WeightSource
    public let prefix: String
    public let registry: LayerRegistry
    /// Dense layers switch to this precision as they load (bf16 then never holds fp32 weights).
    public let precision: Precision
    /// What attention's two matmuls run in: `precision` unless set (a UNet whose dense layers load
    /// fp32 for a quantizer can still run its attention in bf16).
    public let attentionPrecision: Precision
    /// Inference only: fp32 linears run on oneDNN with weights packed once (faster than OpenBLAS,
    /// which repacks per call) and keep no fp32 master copy, so they cannot be quantized later.
    public let packForInference: Bool
    /// Builds quantized layers as the model loads (a deployable quantized checkpoint, or an fp32
    /// one quantized layer by layer), so the full set of fp32 weights is never resident.
    public let kernelFactory: LayerKernelFactory?

    public init(weights: WeightSource, prefix: String = "", registry: LayerRegistry = LayerRegistry(),
                precision: Precision = .fp32, attentionPrecision: Precision? = nil, packForInference: Bool = false,
                kernelFactory: LayerKernelFactory? = nil) {
        self.weights = weights
        self.prefix = prefix
        self.registry = registry
        self.precision = precision
        self.attentionPrecision = attentionPrecision ?? precision
        self.packForInference = packForInference
        self.kernelFactory = kernelFactory
    }

    public func child(_ name: String) -> ModuleLoader {
        ModuleLoader(weights: weights, prefix: key(name), registry: registry, precision: precision,
                     attentionPrecision: attentionPrecision, packForInference: packForInference, kernelFactory: kernelFactory)
    }

    public func key(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        try weights.tensor(key(name), shape: shape)
    }

    public func contains(_ name: String) -> Bool { weights.contains(key(name)) }

    public func linear(_ name: String, in inFeatures: Int, out outFeatures: Int, bias: Bool = true,
                       role: LayerRole = .plain) throws -> Linear {
        let path = key(name)
        let b = bias ? try weights.tensor("\(path).bias", shape: [outFeatures]) : nil
        let layer: Linear
        if let kernelFactory, case .linear(let k)? = try kernelFactory.kernel(
            for: LayerSpec(path: path, role: role, geometry: .linear(inFeatures: inFeatures, outFeatures: outFeatures), hasBias: bias, bias: b),
            weights: weights) {
            layer = Linear(path: path, inFeatures: inFeatures, outFeatures: outFeatures, bias: b, quantizedKernel: k)
        } else {
            let w = try weights.tensor("\(path).weight", shape: [outFeatures, inFeatures])
            layer = Linear(path: path, weight: w, bias: b)
            if precision != .fp32 { try layer.usePrecision(precision) } else if packForInference { try layer.packForInference() }
        }
        layer.role = role
        registry.register(layer)
        return layer
    }

    public func conv(_ name: String, in inChannels: Int, out outChannels: Int, kernel: Int,
                     stride: Int = 1, padding: Int = 0, bias: Bool = true, role: LayerRole = .plain) throws -> Conv2d {
        let path = key(name)
        let b = bias ? try weights.tensor("\(path).bias", shape: [outChannels]) : nil
        let geometry = LayerGeometry.conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: kernel, stride: stride, padding: padding)
        let layer: Conv2d
        if let kernelFactory, case .conv2d(let k)? = try kernelFactory.kernel(
            for: LayerSpec(path: path, role: role, geometry: geometry, hasBias: bias, bias: b), weights: weights) {
            layer = Conv2d(path: path, inChannels: inChannels, outChannels: outChannels, kernelSize: kernel, stride: stride,
                           padding: padding, bias: b, quantizedKernel: k)
        } else {
            let w = try weights.tensor("\(path).weight", shape: [outChannels, inChannels, kernel, kernel])
            layer = try Conv2d(path: path, weight: w, bias: b, stride: stride, padding: padding)
            if precision != .fp32 { try layer.usePrecision(precision) }
            layer.releasesMasterAfterPacking = packForInference
        }
        layer.role = role
        registry.register(layer)
        return layer
    }

    public func groupNorm(_ name: String, groups: Int, channels: Int, eps: Float) throws -> GroupNorm {
        GroupNorm(groups: groups, channels: channels, eps: eps,
                  weight: try tensor("\(name).weight", shape: [channels]),
                  bias: try tensor("\(name).bias", shape: [channels]))
    }

    public func layerNorm(_ name: String, channels: Int, eps: Float) throws -> LayerNorm {
        LayerNorm(channels: channels, eps: eps,
                  weight: try tensor("\(name).weight", shape: [channels]),
                  bias: try tensor("\(name).bias", shape: [channels]))
    }
}

/// Every Conv2d and Linear of a model in module order, keyed by path.
public final class LayerRegistry {
    public private(set) var layers: [WeightLayer] = []
    private var byPath: [String: WeightLayer] = [:]
    public init() {}

    public func register(_ layer: WeightLayer) {
        precondition(byPath[layer.path] == nil, "layer \(layer.path) registered twice")
        layers.append(layer)
        byPath[layer.path] = layer
    }

    public subscript(path: String) -> WeightLayer? { byPath[path] }
    public var paths: [String] { layers.map(\.path) }
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }

    public func usePrecision(_ precision: Precision) throws {
        for layer in layers { try layer.usePrecision(precision) }
    }
}

/// What a `LayerKernelFactory` is told about a layer as the model builds it.
public struct LayerSpec {
    public let path: String
    public let role: LayerRole
    public let geometry: LayerGeometry
    public let hasBias: Bool
    /// The fp32 bias, already read from the source.
    public let bias: Tensor?

    public init(path: String, role: LayerRole, geometry: LayerGeometry, hasBias: Bool, bias: Tensor?) {
        self.path = path; self.role = role; self.geometry = geometry; self.hasBias = hasBias; self.bias = bias
    }
}

/// Supplies ready kernels for layers while a model loads (quantized checkpoints); nil for a layer
/// means "load it FP from the weight source as usual". A factory reads what it needs from
/// `weights` itself (packed codes, or the fp32 weight of that one layer).
public protocol LayerKernelFactory: AnyObject {
    func kernel(for layer: LayerSpec, weights: WeightSource) throws -> InstalledKernel?
}
