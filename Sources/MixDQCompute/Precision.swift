/// Numeric precision of the dense layers (convolutions and linears).
///
/// `fp32` is the reference. `bf16` runs oneDNN bf16 kernels (native on AVX512-BF16) with fp32
/// accumulation; activations between layers, norms, softmax and residuals stay fp32.
public enum Precision: String, CaseIterable, Sendable {
    case fp32
    case bf16
}
