import CDNNL

/// When oneDNN's u8 x s8 -> s32 primitives need the 7-bit activation split to be exact.
///
/// With VNNI (AVX-512-VNNI, AVX2-VNNI, AMX) oneDNN multiplies u8 by s8 into int32 directly. Without
/// it (plain AVX2 or AVX-512 core, or a process capped by `ONEDNN_MAX_CPU_ISA`) both its matmul
/// (`gemm:jit`) and its convolution (`jit_uni_int8:avx2`, `jit_int8:avx512_core`) go through
/// VPMADDUBSW, which adds pairs of u8 x s8 products into a *saturating* int16: 255 x 127 x 2 = 64770
/// does not fit, so full-range codes give wrong sums. Splitting each code q = 128 hi + lo with hi in
/// {0, 1} and lo in [0, 127] keeps every pair sum within 2 x 127 x 128 = 32512; both halves run on the
/// same packed weights and recombine as 128 acc_hi + acc_lo (twice the integer work, no extra weights).
///
/// A layer whose weight codes all lie in [-64, 64] (every weight bit width up to 7, e.g. the packed
/// 4-bit and 2-bit layers of a mixed-precision config) cannot saturate: 2 x 255 x 64 = 32640 <= 32767,
/// so it runs direct even without VNNI.
public enum Int8ActivationSplit {
    /// VNNI bits of `dnnl_cpu_isa_t` (avx512_core_vnni = 0x67, avx2_vnni = 0x407; bf16 and AMX include 0x40).
    static let vnniBits: UInt32 = 0x40 | 0x400

    /// True when oneDNN, as capped for this process, has no VNNI instruction to use.
    public static let cpuLacksVNNI: Bool = {
        let isa = UInt32(dnnl_get_effective_cpu_isa().rawValue)
        return isa & vnniBits == 0
    }()

    /// Largest |weight code| whose pair sums with any u8 codes fit int16: 2 x 255 x 64 = 32640.
    public static let saturationFreeWeightMagnitude = 64

    /// Whether a layer with these weight codes needs the split on this CPU.
    public static func needed(weightCodes: [Int8]) -> Bool {
        cpuLacksVNNI && weightCodes.contains { abs(Int($0)) > saturationFreeWeightMagnitude }
    }
}
