import CKernels
import MixDQCompute

/// MixDQ's uniform quantizer math (mixdq-method.md §3.3), in float32 like PyTorch.
///
/// `q = clamp(round(x / Δ) + z, qmin, qmax)`, `x̂ = (q − z)·Δ`, round half to even.
public enum UniformQuantizer {
    /// Degenerate-range guard: a Δ below this is raised to it (a channel of zeros).
    public static let minimumDelta: Float = 1e-6

    /// Integer range: symmetric `[−2^(b−1), 2^(b−1)−1]`, asymmetric `[0, 2^b−1]`.
    public static func range(bits: Int, symmetric: Bool) -> (qmin: Float, qmax: Float) {
        symmetric ? (-Float(1 << (bits - 1)), Float((1 << (bits - 1)) - 1)) : (0, Float((1 << bits) - 1))
    }

    /// Scale and zero point from a range that is first widened to contain 0.
    public static func parameters(min lo: Float, max hi: Float, bits: Int, symmetric: Bool) -> (delta: Float, zeroPoint: Float) {
        let xMin = Swift.min(lo, 0), xMax = Swift.max(hi, 0)
        if symmetric {
            let levels = Float((1 << (bits - 1)) - 1)
            let delta = Swift.max(Swift.max(abs(xMin), xMax) / levels, minimumDelta)
            return (delta, 0)
        }
        let delta = Swift.max((xMax - xMin) / Float((1 << bits) - 1), minimumDelta)
        return (delta, (-xMin / delta).rounded(.toNearestOrEven))
    }

    /// Fake-quantizes `n` contiguous values.
    public static func fakeQuantize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int,
                                    delta: Float, zeroPoint: Float, bits: Int, symmetric: Bool) {
        let (qmin, qmax) = range(bits: bits, symmetric: symmetric)
        mdq_fake_quant_tensor(x, y, n, delta, zeroPoint, qmin, qmax)
    }
}

/// Per-output-channel weight parameters for one bit width.
public struct ChannelParameters: Equatable, Sendable {
    public var delta: [Float]
    public var zeroPoint: [Float]
}

/// Weight quantization of a `[out, in, ...]` weight, per output channel, optionally over a
/// column range (split shortcuts quantize the two concatenated input parts separately).
public enum WeightQuantization {
    /// Per-row min/max over columns `cols` of a `[rows, rowLength]` matrix.
    static func rowRanges(_ w: Tensor, columns: Range<Int>, rowLength: Int) -> [(Float, Float)] {
        let rows = w.count / rowLength
        return (0..<rows).map { r in
            var lo: Float = 0, hi: Float = 0
            mdq_minmax(w.data + r * rowLength + columns.lowerBound, columns.count, &lo, &hi)
            return (lo, hi)
        }
    }

    public static func parameters(_ w: Tensor, columns: Range<Int>, rowLength: Int, bits: Int, symmetric: Bool) -> ChannelParameters {
        var p = ChannelParameters(delta: [], zeroPoint: [])
        for (lo, hi) in rowRanges(w, columns: columns, rowLength: rowLength) {
            let (d, z) = UniformQuantizer.parameters(min: lo, max: hi, bits: bits, symmetric: symmetric)
            p.delta.append(d); p.zeroPoint.append(z)
        }
        return p
    }

    /// Writes the fake-quantized columns `cols` of every row of `w` into `out`.
    public static func fakeQuantize(_ w: Tensor, into out: Tensor, columns: Range<Int>, rowLength: Int,
                                    parameters p: ChannelParameters, bits: Int, symmetric: Bool) {
        for r in 0..<(w.count / rowLength) {
            let off = r * rowLength + columns.lowerBound
            UniformQuantizer.fakeQuantize(w.data + off, out.data + off, count: columns.count, delta: p.delta[r],
                                          zeroPoint: p.zeroPoint[r], bits: bits, symmetric: symmetric)
        }
    }
}
