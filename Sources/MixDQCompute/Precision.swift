import CDNNL
import Foundation
import CKernels

/// Numeric precision of the dense layers (convolutions and linears).
///
/// `fp32` is the reference. `bf16` runs oneDNN bf16 kernels (native on AVX512-BF16) with fp32
/// accumulation; activations between layers, norms, softmax and residuals stay fp32.
public enum Precision: String, CaseIterable, Sendable {
    case fp32
    case bf16
}

extension Precision {
    public struct Unsupported: Error, CustomStringConvertible, LocalizedError {
        public let description: String
        public var errorDescription: String? { description }
    }

    /// Whether oneDNN can run this precision here: asked of oneDNN itself (a small matmul
    /// primitive), so `ONEDNN_MAX_CPU_ISA` and CPUs without AVX-512 answer truthfully.
    public var isAvailable: Bool {
        switch self {
        case .fp32: return true
        case .bf16: return Precision.bf16Probe
        }
    }

    private static let bf16Probe: Bool = {
        guard mdq_isa_detected() == MDQ_ISA_AVX512, let engine = try? DNNLEngine.shared.engine,
              var src = try? DNNLEngine.memoryDesc([16, 32], dnnl_bf16, dnnl_ab),
              var wei = try? DNNLEngine.memoryDesc([32, 16], dnnl_bf16, dnnl_ab),
              var dst = try? DNNLEngine.memoryDesc([16, 16], dnnl_f32, dnnl_ab) else { return false }
        var desc = dnnl_matmul_desc_t()
        guard dnnl_matmul_desc_init(&desc, &src, &wei, nil, &dst) == dnnl_success else { return false }
        var pd: dnnl_primitive_desc_t?
        let status = dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil)
        if let pd { dnnl_primitive_desc_destroy(pd) }
        return status == dnnl_success
    }()

    /// Returns a note to print when it runs but slowly; throws when it cannot run at all.
    public func checkSupported() throws -> String? {
        guard self == .bf16 else { return nil }
        guard isAvailable else {
            throw Unsupported(description: "--precision bf16 needs oneDNN bf16 kernels (AVX-512); not available on this CPU (\(CPUInfo.current.summary)): use --precision fp32")
        }
        if mdq_cpu_has_avx512_bf16() == 0 {
            return "note: this CPU has no AVX512-BF16; oneDNN emulates bf16, which may be slower than fp32"
        }
        return nil
    }
}
