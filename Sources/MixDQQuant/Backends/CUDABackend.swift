import CMixDQCUDA
import Foundation
import MixDQCompute

/// W·A layers on the GPU through libmixdq_cuda.so (kernels/): each call copies the fp32 input to the
/// device, quantizes it there to the same u8 codes as the CPU (fp32 division, round half even),
/// runs the exact s32 product (tensor cores where aligned) and the same fp32 epilogue, and copies
/// the fp32 output back. So it computes what `Int8Backend` computes, bit for bit by construction;
/// fp16/bf16 activations are for a GPU-resident pipeline and are tested by kernels/tests.
/// FP (act-protected) and weight-only (A16) layers run on the CPU, as `Int8Backend` runs them.
///
/// Compiled and wired only: not run on a GPU yet (kernels/README.md). Copies per call, so this is
/// a correctness path, not a fast one.
public struct CUDABackend: QuantBackend {
    public let library: CUDALibrary
    private let cpu = Int8Backend()

    /// Opens the library and device 0, or throws what is missing (`CUDAUnavailableError`).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        library = try CUDALibrary.load(environment: environment)
    }

    public var name: String { "cuda" }

    public func unsupportedReason(_ layer: QuantizedLayer) -> String? { cpu.unsupportedReason(layer) }

    public func makeKernel(for layer: QuantizedLayer) throws -> InstalledKernel {
        if let reason = unsupportedReason(layer) { throw QuantBackendError(backend: name, path: layer.path, reason: reason) }
        guard layer.weightEnabled, layer.activationEnabled else { return try cpu.makeKernel(for: layer) }
        let codes = try layer.integerWeights(bits: layer.weightBits)
        let activation = layer.observers.map { $0.parameters(bits: layer.activationBits) }
        return try Self.kernel(library: library, site: layer.site, codes: codes, activation: activation,
                               activationBits: layer.activationBits, bias: layer.layer.bias)
    }

    /// The device kernel of a site from its integer weights and per-part (Δx, z).
    public static func kernel(library: CUDALibrary, site: QuantSite, codes: IntegerWeights,
                              activation: [(delta: Float, zeroPoint: Float)], activationBits: Int, bias: Tensor?) throws -> InstalledKernel {
        guard codes.parts.count == site.weightParts.count, activation.count == site.activationParts.count,
              codes.codes.count == site.outChannels * site.rowLength, (2...8).contains(activationBits),
              bias.map({ $0.count == site.outChannels }) ?? true else {
            throw QuantBackendError(backend: "cuda", path: site.path,
                                    reason: "\(codes.parts.count) weight part(s) with \(codes.codes.count) codes, \(activation.count) activation part(s) at \(activationBits) bits do not fit \(site.geometry)")
        }
        let outC = site.outChannels, taps = site.geometry.taps
        let k = Int(Double(taps).squareRoot())
        var parts: [CUDAQuantPart] = []
        for (i, channels) in site.activationParts.enumerated() {
            // Weights to [out][ky][kx][in] (KRSC; a Linear's [out][in] unchanged), this part's columns.
            let cp = channels.count
            var w = [Int8](repeating: 0, count: outC * taps * cp)
            var wsum = [Int32](repeating: 0, count: outC)
            for o in 0..<outC {
                var s: Int32 = 0
                for t in 0..<taps {
                    for c in 0..<cp {
                        let v = codes.codes[o * site.rowLength + (channels.lowerBound + c) * taps + t]
                        w[(o * taps + t) * cp + c] = v
                        s += Int32(v)
                    }
                }
                wsum[o] = s
            }
            let (delta, z) = activation[i]
            guard delta > 0, delta.isFinite, z >= 0, z <= Float((1 << activationBits) - 1), z == z.rounded() else {
                throw QuantBackendError(backend: "cuda", path: site.path, reason: "activation part \(i): Δx \(delta), zero point \(z) out of range")
            }
            parts.append(CUDAQuantPart(weight: try CUDABuffer(library, copying: w), wsum: try CUDABuffer(library, copying: wsum),
                                       wscale: try CUDABuffer(library, copying: codes.parts[i].scales), channels: cp,
                                       firstChannel: channels.lowerBound, delta: delta, zeroPoint: z, bits: Int32(activationBits)))
        }
        let biasBuffer = try bias.map { try CUDABuffer(library, copying: $0.scalars) }
        switch site.geometry {
        case .linear(let inF, let outF):
            return .linear(CUDALinearKernel(library: library, path: site.path, inFeatures: inF, outFeatures: outF, part: parts[0], bias: biasBuffer))
        case .conv2d(let inC, _, _, let s, let p):
            guard k * k == taps, s >= 1, p >= 0 else {
                throw QuantBackendError(backend: "cuda", path: site.path, reason: "\(taps) taps, stride \(s), padding \(p): not a square kernel with stride ≥ 1")
            }
            return .conv2d(CUDAConv2dKernel(library: library, path: site.path, inChannels: inC, outChannels: outC, kernelSize: k,
                                            stride: s, padding: p, parts: parts, bias: biasBuffer))
        }
    }
}

/// One quantized input part on the device: its weight codes, their sums and Δw, and its Δx and z.
final class CUDAQuantPart {
    let weight: CUDABuffer, wsum: CUDABuffer, wscale: CUDABuffer
    let channels: Int, firstChannel: Int
    let delta: Float, zeroPoint: Float, bits: Int32

    init(weight: CUDABuffer, wsum: CUDABuffer, wscale: CUDABuffer, channels: Int, firstChannel: Int,
         delta: Float, zeroPoint: Float, bits: Int32) {
        self.weight = weight; self.wsum = wsum; self.wscale = wscale
        self.channels = channels; self.firstChannel = firstChannel
        self.delta = delta; self.zeroPoint = zeroPoint; self.bits = bits
    }

    var descriptor: mixdq_cuda_qpart {
        mixdq_cuda_qpart(weight: weight.pointer.map { UnsafePointer($0.assumingMemoryBound(to: Int8.self)) },
                         wsum: wsum.pointer.map { UnsafePointer($0.assumingMemoryBound(to: Int32.self)) },
                         wscale: wscale.pointer.map { UnsafePointer($0.assumingMemoryBound(to: Float.self)) },
                         channels: Int64(channels), first_channel: Int64(firstChannel),
                         delta: delta, zero_point: zeroPoint, bits: bits)
    }
}

private func floatPointer(_ b: CUDABuffer?) -> UnsafePointer<Float>? {
    b?.pointer.map { UnsafePointer($0.assumingMemoryBound(to: Float.self)) }
}

/// A W·A Linear on the device (fp32 in and out, copied per call).
public final class CUDALinearKernel: LinearKernel {
    let library: CUDALibrary
    let path: String
    let inFeatures: Int, outFeatures: Int
    let part: CUDAQuantPart
    let bias: CUDABuffer?

    init(library: CUDALibrary, path: String, inFeatures: Int, outFeatures: Int, part: CUDAQuantPart, bias: CUDABuffer?) {
        self.library = library; self.path = path; self.inFeatures = inFeatures; self.outFeatures = outFeatures
        self.part = part; self.bias = bias
    }

    public func forward(_ x: Tensor) throws -> Tensor { try run(x, residual: nil) }
    public func forward(_ x: Tensor, adding residual: Tensor) throws -> Tensor { try run(x, residual: residual) }

    private func run(_ x: Tensor, residual: Tensor?) throws -> Tensor {
        guard x.rank >= 1, x.shape[x.rank - 1] == inFeatures else {
            throw LayerStateError(path: path, reason: "input \(x.shape) does not end in \(inFeatures) features")
        }
        let rows = x.count / inFeatures
        let shape = Array(x.shape.dropLast()) + [outFeatures]
        if let residual, residual.shape != shape { throw ResidualShapeError(output: shape, residual: residual.shape) }
        let y = Tensor(uninitializedShape: shape)
        guard rows > 0 else { return y }
        let dx = try CUDABuffer(library, bytes: x.count * 4), dy = try CUDABuffer(library, bytes: y.count * 4)
        let ws = try CUDABuffer(library, bytes: library.linearWorkspace(Int64(rows), Int64(inFeatures), Int64(outFeatures)))
        try dx.upload(x.data, bytes: x.count * 4)
        var dr: CUDABuffer?
        if let residual { dr = try CUDABuffer(library, bytes: residual.count * 4); try dr?.upload(residual.data, bytes: residual.count * 4) }
        var desc = part.descriptor
        try library.check(library.w8a8Linear(MIXDQ_CUDA_F32, dx.pointer, Int64(rows), Int64(inFeatures), Int64(outFeatures), &desc,
                                             floatPointer(bias), dr?.pointer, dy.pointer, ws.pointer, ws.bytes, nil),
                          "\(path): mixdq_cuda_w8a8_linear")
        try dy.download(y.data, bytes: y.count * 4)
        return y
    }
}

/// A W·A Conv2d (NHWC; one part, or two for a split shortcut) on the device, fp32 in and out.
public final class CUDAConv2dKernel: Conv2dKernel {
    let library: CUDALibrary
    let path: String
    let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    let parts: [CUDAQuantPart]
    let bias: CUDABuffer?

    init(library: CUDALibrary, path: String, inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int,
         parts: [CUDAQuantPart], bias: CUDABuffer?) {
        self.library = library; self.path = path; self.inChannels = inChannels; self.outChannels = outChannels
        self.kernelSize = kernelSize; self.stride = stride; self.padding = padding; self.parts = parts; self.bias = bias
    }

    public func forward(_ x: FeatureMap) throws -> FeatureMap { try run(x, residual: nil) }
    public func forward(_ x: FeatureMap, adding residual: FeatureMap) throws -> FeatureMap { try run(x, residual: residual) }

    private func run(_ x: FeatureMap, residual: FeatureMap?) throws -> FeatureMap {
        guard x.channels == inChannels, x.height + 2 * padding >= kernelSize, x.width + 2 * padding >= kernelSize else {
            throw LayerStateError(path: path, reason: "input \(x.tensor.shape) does not fit \(inChannels) channels, kernel \(kernelSize), padding \(padding)")
        }
        let oh = (x.height + 2 * padding - kernelSize) / stride + 1, ow = (x.width + 2 * padding - kernelSize) / stride + 1
        let y = FeatureMap(batch: x.batch, height: oh, width: ow, channels: outChannels)
        if let residual, residual.tensor.shape != y.tensor.shape {
            throw ResidualShapeError(output: y.tensor.shape, residual: residual.tensor.shape)
        }
        guard y.tensor.count > 0 else { return y }
        let dx = try CUDABuffer(library, bytes: x.tensor.count * 4), dy = try CUDABuffer(library, bytes: y.tensor.count * 4)
        let ws = try CUDABuffer(library, bytes: library.conv2dWorkspace(Int64(x.batch), Int64(x.height), Int64(x.width), Int64(inChannels),
                                                                        Int64(outChannels), Int32(kernelSize), Int32(stride), Int32(padding)))
        try dx.upload(x.tensor.data, bytes: x.tensor.count * 4)
        var dr: CUDABuffer?
        if let residual {
            dr = try CUDABuffer(library, bytes: residual.tensor.count * 4)
            try dr?.upload(residual.tensor.data, bytes: residual.tensor.count * 4)
        }
        let descs = parts.map { $0.descriptor }
        try descs.withUnsafeBufferPointer { d in
            try library.check(library.w8a8Conv2d(MIXDQ_CUDA_F32, dx.pointer, Int64(x.batch), Int64(x.height), Int64(x.width),
                                                 Int64(inChannels), Int64(outChannels), Int32(kernelSize), Int32(stride), Int32(padding),
                                                 d.baseAddress, Int32(d.count), floatPointer(bias), dr?.pointer, dy.pointer,
                                                 ws.pointer, ws.bytes, nil),
                              "\(path): mixdq_cuda_w8a8_conv2d")
        }
        try dy.download(y.tensor.data, bytes: y.tensor.count * 4)
        return y
    }
}
