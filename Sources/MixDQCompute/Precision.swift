/// Numeric precision of the dense layers (convolutions and linears).
///
/// `fp32` is the reference. `bf16` runs oneDNN bf16 kernels (native on AVX512-BF16) with fp32
/// accumulation; activations between layers, norms, softmax and residuals stay fp32.
public enum Precision: String, CaseIterable, Sendable {
    case fp32
    case bf16
}

import CKernels

extension Precision {
    public struct Unsupported: Error, CustomStringConvertible {
        public let description: String
    }

    /// bf16 needs AVX-512 for oneDNN's bf16 kernels (native with AVX512-BF16, emulated without).
    /// Returns a note to print when it runs but slowly; throws when it cannot run at all.
    public func checkSupported() throws -> String? {
        guard self == .bf16 else { return nil }
        if mdq_isa_detected() != MDQ_ISA_AVX512 {
            throw Unsupported(description: "--precision bf16 needs AVX-512 (oneDNN bf16 kernels); this CPU lacks it: use --precision fp32")
        }
        if mdq_cpu_has_avx512_bf16() == 0 {
            return "note: this CPU has no AVX512-BF16; oneDNN emulates bf16, which may be slower than fp32"
        }
        return nil
    }
}
