import ArgumentParser
import MixDQCompute

/// `mixdq cpu-info`: what this process computes on (CPU model, the SIMD level of our kernels,
/// oneDNN's ISA, bf16/VNNI, the malloc in use), after any `MIXDQ_MAX_CPU_ISA` / `ONEDNN_MAX_CPU_ISA` ceiling.
struct CPUInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpu-info",
        abstract: "Print the CPU model and the instruction sets mixdq and oneDNN use here.",
        discussion: "Set MIXDQ_MAX_CPU_ISA (or ONEDNN_MAX_CPU_ISA) to AVX2 to run as an AVX2-only CPU would.")

    func run() throws {
        let info = CPUInfo.current
        print("cpu: \(info.model)")
        print("kernels: \(info.kernelISA)")
        print("oneDNN: \(info.onednnISA)")
        print("avx512_vnni: \(info.hasVNNI ? "yes" : "no")")
        print("bf16: \(Precision.bf16.isAvailable ? "yes" : "no")\(info.hasBF16Instructions ? " (native AVX512-BF16)" : "")")
        if let engine = AttentionKernel.blockedEngine(precision: .bf16, headDim: 64) {
            print("bf16 attention: \(engine.rawValue) (16 query rows at a time, scores in cache)")
        } else {
            let anyEngine = BlockedBF16Attention.Engine.allCases.contains(where: BlockedBF16Attention.isAvailable)
            print("bf16 attention: oneDNN matmuls\(anyEngine ? " (MIXDQ_ATTENTION=onednn)" : " (neither AMX tiles nor AVX512-BF16 here, or a ceiling below them)")")
        }
        print("allocator: \(MemoryAllocator.name)")
        print("fp32 3x3 convolutions: \(ConvolutionAlgorithm.current.rawValue) (\(ConvolutionAlgorithm.environmentVariable); auto: Winograd where oneDNN has it, in image jobs where its weight transform pays back)")
    }
}
