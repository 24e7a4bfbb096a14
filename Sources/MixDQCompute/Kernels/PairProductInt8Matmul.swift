import CKernels
import Foundation

/// Exact u8 × s8 → s32 products on AVX2 without VNNI: codes widened to int16 and multiplied by
/// VPMADDWD, whose int32 pair sums cannot saturate (oneDNN's u8 × s8 there goes through VPMADDUBSW's
/// int16 pair sums, which do, so it needs the 7-bit split and two passes). The 8-bit weight codes
/// rest in 16-column panels (`mdq_gemm_s16_pack_weights`); rows are split across the cores.
/// Equal to `mdq_gemm_u8s8s32_ref` bit for bit.
public final class PairProductInt8Matmul: Int8Products, @unchecked Sendable {
    public let inFeatures: Int, outFeatures: Int
    public let weightSums: [Int32]
    public var splitsActivations: Bool { false }
    private let packed: AlignedBuffer
    private let name: String

    public var weightBytesAtRest: Int { packed.byteCount }

    /// Whether this CPU (as the ISA limit leaves it) has the kernel: AVX2.
    public static var isAvailable: Bool { mdq_gemm_s16_available() != 0 }

    /// Whether a layer with these codes runs here instead of oneDNN (`splitActivations` nil: not
    /// forced): where oneDNN would need the 7-bit split (no VNNI, 8-bit codes beyond ±64) and the CPU
    /// has AVX2. The choice of Linears and convolutions alike.
    static func replacesSplit(weightCodes: [Int8], restBits: Int, splitActivations: Bool?) -> Bool {
        splitActivations == nil && restBits == 8 && isAvailable && Int8ActivationSplit.needed(weightCodes: weightCodes)
    }

    /// `weightCodes` `[outFeatures, inFeatures]` row-major.
    public init(weightCodes: [Int8], outFeatures: Int, inFeatures: Int, name: String? = nil) throws {
        self.name = name ?? "int8 matmul [\(outFeatures), \(inFeatures)]"
        guard outFeatures > 0, inFeatures > 0, weightCodes.count == outFeatures * inFeatures else {
            throw Int8KernelError(layer: self.name, "\(weightCodes.count) weight codes for [\(outFeatures), \(inFeatures)]")
        }
        guard Self.isAvailable else {
            throw Int8KernelError(layer: self.name, "the pair-product kernel needs AVX2, which this CPU (or the ISA limit) lacks")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weightSums = Int8WeightSums.perOutput(weightCodes, outputs: outFeatures, rowLength: inFeatures)
        packed = AlignedBuffer(byteCount: mdq_gemm_s16_packed_count(outFeatures, inFeatures))
        weightCodes.withUnsafeBufferPointer {
            mdq_gemm_s16_pack_weights($0.baseAddress, outFeatures, inFeatures, packed.pointer.assumingMemoryBound(to: Int8.self))
        }
    }

    public func implementation(rows: Int) throws -> String { "mixdq:avx2_vpmaddwd_s16 (exact, 6x16 tile)" }

    public func accumulate(_ a: UnsafePointer<UInt8>, rows m: Int, into c: UnsafeMutablePointer<Int32>) throws {
        guard m > 0 else { return }
        FLOPCounter.add(macs: m * inFeatures * outFeatures)
        let (k, n) = (inFeatures, outFeatures)
        let w = UnsafePointer(packed.pointer.assumingMemoryBound(to: Int8.self))
        let failure = FirstStatus()
        // rowLength: a row costs k·n multiply-adds, so even a few rows are worth both cores.
        RowParallel.run(rows: m, rowLength: k * n) { rows in
            failure.record(mdq_gemm_u8s8s32_s16(rows.count, n, k, a + rows.lowerBound * k, k, w, c + rows.lowerBound * n, n))
        }
        try check(failure)
    }

    /// The products with the epilogue fused into the kernel's last stores (bit-identical to the
    /// products followed by `Int8LinearKernel.dequantize`: the same float operations per element).
    public func accumulateDequantized(_ a: UnsafePointer<UInt8>, rows m: Int, into y: UnsafeMutablePointer<Float>, zeroPoint: Int32,
                                      scales: [Float], bias: Tensor?, residual: UnsafePointer<Float>?) throws {
        guard m > 0 else { return }
        FLOPCounter.add(macs: m * inFeatures * outFeatures)
        let (k, n) = (inFeatures, outFeatures)
        let w = UnsafePointer(packed.pointer.assumingMemoryBound(to: Int8.self))
        let failure = FirstStatus()
        weightSums.withUnsafeBufferPointer { ws in
            scales.withUnsafeBufferPointer { sc in
                RowParallel.run(rows: m, rowLength: k * n) { rows in
                    let lo = rows.lowerBound
                    failure.record(mdq_gemm_u8s8_dequant_s16(rows.count, n, k, a + lo * k, k, w, y + lo * n, n, zeroPoint,
                                                             ws.baseAddress, sc.baseAddress, bias.map { UnsafePointer($0.data) },
                                                             residual.map { $0 + lo * n }, n))
                }
            }
        }
        try check(failure)
    }

    private func check(_ failure: FirstStatus) throws {
        switch failure.value {
        case 0: return
        case -2: throw Int8KernelError(layer: name, "out of memory for the pair-product kernel's scratch")
        default: throw Int8KernelError(layer: name, "the pair-product kernel is unavailable on this CPU (status \(failure.value))")
        }
    }
}
