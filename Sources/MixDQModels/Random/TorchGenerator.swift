import Foundation
import MixDQCompute

/// A bit-exact port of `torch.Generator("cpu").manual_seed(seed)` followed by
/// `torch.randn(shape, generator=g)` for float32 tensors.
///
/// torch's CPU `randn` has two kernels (aten/src/ATen/native/cpu/DistributionTemplates.h):
/// * numel >= 16 (contiguous float): fill the tensor with uniforms `(u32 & 0xFFFFFF) * 2^-24`,
///   then Box-Muller each block of 16 with `u1 = 1 - d[j]`, `u2 = d[j+8]` for j < 8, writing
///   `r·cos θ` to j and `r·sin θ` to j+8. A ragged tail redraws 16 fresh uniforms into the last
///   16 slots and transforms those again.
/// * numel < 16: one `at::normal_distribution<double>` per element, from 53-bit double
///   uniforms, caching the sine half of each Box-Muller pair in the generator. The cache
///   survives between calls (only the small-tensor path reads it) and `manualSeed` clears it.
/// The large-tensor kernel differs by CPU: x86 builds with AVX2/AVX-512 use the Cephes
/// approximations in avx_mathfun.h, others (ARM64, `ATEN_CPU_CAPABILITY=default`) use libm.
public struct TorchGenerator: NoiseSource {
    /// Which of torch's float Box-Muller kernels to reproduce for tensors with >= 16 elements.
    public enum NormalKernel: String, Sendable, CaseIterable {
        /// x86-64 CPUs with AVX2 or AVX-512 (what diffusers on a Linux/Windows PC uses).
        case avx2
        /// torch's portable kernel with libm `logf`/`cosf`/`sinf` (ARM64, Apple Silicon).
        case portable
    }

    public let kernel: NormalKernel
    public private(set) var initialSeed: UInt64
    private var engine: MT19937
    /// `next_double_normal_sample_` of `CPUGeneratorImpl`.
    private var nextDoubleNormal: Double?

    /// `torch.Generator("cpu").manual_seed(seed)`. Only the low 32 bits seed mt19937, as in torch.
    public init(seed: UInt64, kernel: NormalKernel = .avx2) {
        self.kernel = kernel
        self.initialSeed = seed
        self.engine = MT19937(seed: seed)
        self.nextDoubleNormal = nil
    }

    public mutating func manualSeed(_ seed: UInt64) {
        initialSeed = seed
        engine = MT19937(seed: seed)
        nextDoubleNormal = nil
    }

    /// `CPUGeneratorImpl::random()`: one tempered mt19937 word.
    public mutating func random() -> UInt32 { engine.next() }

    /// `CPUGeneratorImpl::random64()`: the first word is the high half.
    public mutating func random64() -> UInt64 {
        let hi = UInt64(engine.next())
        let lo = UInt64(engine.next())
        return (hi << 32) | lo
    }

    /// `uniform_real_distribution<float>(0, 1)`: 24 random bits, exact in float.
    @inline(__always)
    mutating func uniformFloat() -> Float {
        Float(Double(random() & 0xFF_FFFF) * 0x1p-24)
    }

    /// `uniform_real_distribution<double>(0, 1)`: 53 random bits from `random64()`.
    @inline(__always)
    mutating func uniformDouble() -> Double {
        Double(random64() & ((1 << 53) - 1)) * 0x1p-53
    }

    /// `at::normal_distribution<double>`, the small-tensor path, with its cached second value.
    mutating func normalDouble(mean: Double = 0, std: Double = 1) -> Double {
        if let cached = nextDoubleNormal {
            nextDoubleNormal = nil
            return cached * std + mean
        }
        let u1 = uniformDouble()
        let u2 = uniformDouble()
        let r = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        nextDoubleNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta) * std + mean
    }

    /// `torch.randn(shape, generator=self)` as float32.
    public mutating func randn(_ shape: [Int]) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        fillNormal(t.buffer)
        return t
    }

    /// The values of `torch.randn([count], generator=self)`.
    public mutating func randn(count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { fillNormal($0) }
        return out
    }

    /// `tensor.normal_(mean, std, generator=self)` on a contiguous float32 buffer.
    public mutating func fillNormal(_ data: UnsafeMutableBufferPointer<Float>, mean: Float = 0, std: Float = 1) {
        let size = data.count
        guard size >= 16 else {
            for i in 0..<size { data[i] = Float(normalDouble(mean: Double(mean), std: Double(std))) }
            return
        }
        for i in 0..<size { data[i] = uniformFloat() }
        var i = 0
        while i + 16 <= size {
            boxMuller16(data.baseAddress! + i, mean: mean, std: std)
            i += 16
        }
        if size % 16 != 0 {
            // torch recomputes the last 16 values from fresh uniforms
            let tail = data.baseAddress! + (size - 16)
            for k in 0..<16 { tail[k] = uniformFloat() }
            boxMuller16(tail, mean: mean, std: std)
        }
    }

    /// `normal_fill_16` / `normal_fill_16_AVX2`: pairs (j, j+8) of one block of 16 uniforms.
    private func boxMuller16(_ d: UnsafeMutablePointer<Float>, mean: Float, std: Float) {
        switch kernel {
        case .avx2:
            let twoPi = Float(2.0 * Double.pi)  // _mm256_set1_ps(2.0f * c10::pi<double>)
            for j in 0..<8 {
                let u1 = 1 - d[j]
                let u2 = d[j + 8]
                let radius = (-2 * AVXMathFun.log(u1)).squareRoot()
                let (s, c) = AVXMathFun.sincos(twoPi * u2)
                d[j] = mean.addingProduct(radius * c, std)        // _mm256_fmadd_ps(n1, std, mean)
                d[j + 8] = mean.addingProduct(radius * s, std)
            }
        case .portable:
            for j in 0..<8 {
                let u1 = 1 - d[j]
                let u2 = d[j + 8]
                let radius = (-2 * Foundation.log(u1)).squareRoot()
                let theta = Float(2.0 * Double.pi * Double(u2))  // double product, stored as float
                d[j] = radius * Foundation.cos(theta) * std + mean
                d[j + 8] = radius * Foundation.sin(theta) * std + mean
            }
        }
    }
}
