/// Exact integer products of a W8A8 layer, `c[m, n] = Σ_k a[m, k] · w[n, k]` (u8 activation codes,
/// s8 weight codes, s32 results): on oneDNN (`DNNLInt8Matmul`), or on CPUs without VNNI our exact
/// VPMADDWD kernel (`PairProductInt8Matmul`).
public protocol Int8Products: AnyObject, Sendable {
    var inFeatures: Int { get }
    var outFeatures: Int { get }
    /// Σ_k w[n, k] per output: the zero-point correction of the dequantization epilogue.
    var weightSums: [Int32] { get }
    /// Bytes the weight codes occupy between calls.
    var weightBytesAtRest: Int { get }
    /// Whether each call runs oneDNN twice on the 7-bit halves of the codes (its u8 × s8 saturates without VNNI).
    var splitsActivations: Bool { get }
    /// `c = a · wᵀ`: `a` holds `rows x inFeatures` u8 codes, `c` receives `rows x outFeatures` s32.
    func accumulate(_ a: UnsafePointer<UInt8>, rows m: Int, into c: UnsafeMutablePointer<Int32>) throws
    /// What computes the products for this row count (oneDNN's implementation name, or ours).
    func implementation(rows: Int) throws -> String
    /// The products and the W8A8 epilogue `y = (acc - z·Σw[c])·scales[c] + bias[c] (+ residual)`:
    /// `y` (rows x outFeatures) also holds the s32 products in between; `residual` must not overlap it.
    func accumulateDequantized(_ a: UnsafePointer<UInt8>, rows m: Int, into y: UnsafeMutablePointer<Float>, zeroPoint: Int32,
                               scales: [Float], bias: Tensor?, residual: UnsafePointer<Float>?) throws
}

extension Int8Products {
    /// The products into `y`'s storage, then the epilogue in place over row blocks.
    public func accumulateDequantized(_ a: UnsafePointer<UInt8>, rows m: Int, into y: UnsafeMutablePointer<Float>, zeroPoint: Int32,
                                      scales: [Float], bias: Tensor?, residual: UnsafePointer<Float>?) throws {
        let acc = UnsafeMutablePointer<Int32>(OpaquePointer(y))
        try accumulate(a, rows: m, into: acc)
        Int8LinearKernel.dequantize(acc, into: y, rows: m, columns: outFeatures, zeroPoint: zeroPoint, weightSums: weightSums,
                                    scales: scales, bias: bias, residual: residual)
    }
}

public enum Int8ProductsChoice {
    /// The products for these weight codes on this CPU. `splitActivations` nil decides by the CPU:
    /// where oneDNN would need the 7-bit split (no VNNI, 8-bit codes beyond ±64) and the CPU has
    /// AVX2, the VPMADDWD kernel runs instead (exact at one pass, not two); true / false force
    /// oneDNN's split / direct path (tests, benchmarks).
    public static func make(weightCodes: [Int8], outFeatures: Int, inFeatures: Int, restBits: Int = 8,
                            splitActivations: Bool? = nil, name: String? = nil) throws -> any Int8Products {
        if PairProductInt8Matmul.replacesSplit(weightCodes: weightCodes, restBits: restBits, splitActivations: splitActivations) {
            return try PairProductInt8Matmul(weightCodes: weightCodes, outFeatures: outFeatures, inFeatures: inFeatures, name: name)
        }
        return try DNNLInt8Matmul(weightCodes: weightCodes, outFeatures: outFeatures, inFeatures: inFeatures,
                                  restBits: restBits, splitActivations: splitActivations, name: name)
    }
}

extension DNNLInt8Matmul: Int8Products {}
