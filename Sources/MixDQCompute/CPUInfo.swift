import CDNNL
import CKernels
import Foundation

/// What this process computes on: the CPU model, the SIMD level our C kernels dispatch to, the
/// ISA oneDNN may use, and whether oneDNN has a bf16 path here. Both ISA levels honour the
/// ceilings `MIXDQ_MAX_CPU_ISA` / `ONEDNN_MAX_CPU_ISA`, so an AVX-512 machine can run as an
/// AVX2 one. Printed by `mixdq cpu-info`, CI and every benchmark, next to the figures.
public struct CPUInfo: Sendable {
    public let model: String
    /// The level `mdq_*` kernels dispatch to: avx512, avx2 or scalar.
    public let kernelISA: String
    /// oneDNN's effective maximal ISA (after `ONEDNN_MAX_CPU_ISA`).
    public let onednnISA: String
    public let hasVNNI: Bool
    public let hasBF16Instructions: Bool
    /// AMX tiles with bf16, granted to this process and allowed by the ceiling (bf16 attention runs on them).
    public let hasAMXTiles: Bool

    public static let current = CPUInfo()

    private init() {
        model = CPUInfo.readModelName()
        switch mdq_isa_detected() {
        case MDQ_ISA_AVX512: kernelISA = "avx512"
        case MDQ_ISA_AVX2: kernelISA = "avx2"
        default: kernelISA = "scalar"
        }
        onednnISA = String(cString: dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()))
        hasVNNI = mdq_cpu_has_avx512_vnni() != 0
        hasBF16Instructions = mdq_cpu_has_avx512_bf16() != 0
        hasAMXTiles = mdq_cpu_has_amx_bf16() != 0
    }

    /// One line for logs and benchmark reports (with the allocator, which moves timings too).
    public var summary: String {
        "\(model); kernels \(kernelISA), oneDNN \(onednnISA)\(hasVNNI ? ", VNNI" : "")\(hasBF16Instructions ? ", AVX512-BF16" : "")\(hasAMXTiles ? ", AMX tiles" : ""); \(MemoryAllocator.name)"
    }

    static func readModelName() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown CPU"
    }
}
