import COpenBLAS
import Foundation
import CKernels

/// fp32 `y = x W^T + b` on OpenBLAS sgemm, reading the PyTorch `[out, in]` weight in place.
///
/// sgemm packs its panels internally, so the row-major weight needs no reorder at load time.
public final class BLASLinear: LinearKernel, @unchecked Sendable {
    public let weight: Tensor     // [out, in]
    public let bias: Tensor?      // [out]
    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2, "linear weight must be [out, in], got \(weight.shape)")
        self.weight = weight
        self.bias = bias
    }

    public func forward(_ x: Tensor) throws -> Tensor {
        let k = weight.shape[1], n = weight.shape[0]
        guard x.shape.last == k else { throw LinearShapeError(expected: k, got: x.shape) }
        let m = x.count / k
        let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [n])
        GEMM.linear(x.data, rows: m, inFeatures: k, weight: weight.data, outFeatures: n, bias: bias?.data, into: y.data)
        return y
    }
}

/// A linear layer called on a tensor whose last axis is not its input width.
public struct LinearShapeError: Error, CustomStringConvertible, LocalizedError {
    public let expected: Int, got: [Int]
    public var description: String { "linear expects last dimension \(expected), got \(got)" }
    public var errorDescription: String? { description }
}

/// Thin wrappers over cblas_sgemm for the two shapes the models need.
public enum GEMM {
    /// y[m, n] = x[m, k] · w[n, k]^T (+ bias[n]).
    public static func linear(_ x: UnsafePointer<Float>, rows m: Int, inFeatures k: Int, weight w: UnsafePointer<Float>,
                              outFeatures n: Int, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        guard m > 0 else { return }
        FLOPCounter.add(macs: m * n * k)
        if let bias {
            for r in 0..<m { (y + r * n).update(from: bias, count: n) }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, x, Int32(k), w, Int32(k),
                    bias == nil ? 0 : 1, y, Int32(n))
    }

    /// General strided row-major product: c = alpha · op(a) · op(b) + beta · c.
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        FLOPCounter.add(macs: m * n * k)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
