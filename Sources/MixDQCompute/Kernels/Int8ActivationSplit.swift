import CDNNL

/// Whether oneDNN's u8 x s8 -> s32 primitives need the 7-bit activation split to be exact.
///
/// With VNNI (AVX-512-VNNI, AVX2-VNNI, AMX) oneDNN multiplies u8 by s8 into int32 directly. Without
/// it (plain AVX2 or AVX-512 core, or a process capped by `ONEDNN_MAX_CPU_ISA`) both its matmul
/// (`gemm:jit`) and its convolution (`jit_uni_int8:avx2`, `jit_int8:avx512_core`) go through
/// VPMADDUBSW, which adds pairs of u8 x s8 products into a *saturating* int16: 255 x 127 x 2 = 64770
/// does not fit, so full-range codes give wrong sums. Splitting each code q = 128 hi + lo with hi in
/// {0, 1} and lo in [0, 127] keeps every pair sum within 2 x 127 x 128 = 32512; both halves run as one
/// primitive call over twice the rows (same packed weights) and recombine as 128 acc_hi + acc_lo.
public enum Int8ActivationSplit {
    /// VNNI bits of `dnnl_cpu_isa_t` (avx512_core_vnni = 0x67, avx2_vnni = 0x407; bf16 and AMX include 0x40).
    static let vnniBits: UInt32 = 0x40 | 0x400

    /// True when oneDNN, as capped for this process, has no VNNI instruction to use.
    public static let needed: Bool = {
        let isa = UInt32(dnnl_get_effective_cpu_isa().rawValue)
        return isa & vnniBits == 0
    }()
}
