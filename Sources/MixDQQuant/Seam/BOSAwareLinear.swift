import Foundation
import MixDQCompute

/// MixDQ's BOS-aware quantization of `attn2.to_k` / `attn2.to_v`, for every backend: token 0 of each
/// sample's text context (the BOS token, an identical huge outlier for every prompt) is computed in
/// FP on the FP input and stays out of the activation statistics; the other 76 tokens run quantized.
///
/// The FP rows come from `Token0Outputs`: looked up by the token-0 input row (the original's CUDA
/// kernels precompute it the same way), computed with the FP weight while the layer still has one.
public final class BOSAwareLinear: LinearKernel {
    public let path: String
    public let quantized: LinearKernel
    public let token0: Token0Outputs
    /// Whether BOS handling applies right now (fake quant reads the layer's switches per call).
    private let active: () -> Bool

    public init(path: String, quantized: LinearKernel, token0: Token0Outputs, active: @escaping () -> Bool = { true }) {
        self.path = path
        self.quantized = quantized
        self.token0 = token0
        self.active = active
    }

    public func forward(_ x: Tensor) throws -> Tensor {
        guard x.rank == 3, active() else { return try quantized.forward(x) }
        let (batch, tokens, channels) = (x.shape[0], x.shape[1], x.shape[2])
        let y: Tensor
        if let rowAware = quantized as? RowExcludingLinearKernel {
            y = try rowAware.forward(x, excludingRows: { $0 % tokens == 0 })
        } else {
            y = try quantized.forward(x)
        }
        let out = y.shape.last ?? 0
        for b in 0..<batch {
            let row = try token0.output(for: x.data + b * tokens * channels, channels: channels)
            row.withUnsafeBufferPointer { (y.data + b * tokens * out).update(from: $0.baseAddress!, count: out) }
        }
        return y
    }
}

/// FP outputs of token 0 by their input row: a small table (the BOS row of the pipeline's text
/// encoders, the all-zero row of an empty negative prompt), filled from the FP kernel while one
/// exists and stored in deployable checkpoints, where no FP weight is left to compute a new one.
public final class Token0Outputs {
    public let path: String
    public let outFeatures: Int
    public private(set) var entries: [(input: [Float], output: [Float])] = []
    /// Computes a missing row; nil in a deployable model.
    private let fp: LinearKernel?
    private let lock = NSLock()
    /// More distinct token-0 rows than this are computed but not remembered (random test contexts).
    static let capacity = 16

    public init(path: String, outFeatures: Int, fp: LinearKernel?, entries: [(input: [Float], output: [Float])] = []) {
        self.path = path
        self.outFeatures = outFeatures
        self.fp = fp
        self.entries = entries
    }

    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String {
            "\(path): token 0 of the text context is not one this deployable model was quantized for (BOS-aware K/V keeps "
            + "token 0 in FP from a table; no FP weight is left to compute another). Use the text encoders the model was quantized with."
        }
    }

    /// The FP output row for the input row at `x` (`channels` floats). Rows compare bit for bit.
    public func output(for x: UnsafePointer<Float>, channels: Int) throws -> [Float] {
        lock.lock(); defer { lock.unlock() }
        for e in entries where e.input.count == channels && e.input.withUnsafeBytes({ memcmp($0.baseAddress!, x, channels * 4) == 0 }) {
            return e.output
        }
        guard let fp else { throw Missing(path: path) }
        let input = Array(UnsafeBufferPointer(start: x, count: channels))
        let y = try fp.forward(Tensor(shape: [1, channels], values: input))
        let output = Array(UnsafeBufferPointer(start: y.data, count: outFeatures))
        if entries.count < Self.capacity { entries.append((input, output)) }
        return output
    }

    /// Computes and remembers the row for `input` (the pipeline's BOS row when a model is deployed).
    public func prime(_ input: [Float]) throws {
        _ = try input.withUnsafeBufferPointer { try output(for: $0.baseAddress!, channels: input.count) }
    }
}
