import Foundation
import CKernels
import MixDQCompute

/// A tensor read from a file holds NaN or ±Inf (in the file, or after conversion to float32).
///
/// Such a weight turns every image into NaN (black after clamping) without any other symptom,
/// so tensors are checked as they load and the first bad value is named with the file and key.
public struct NonFiniteTensorError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let file: String
    public let key: String
    public let count: Int
    public let firstIndex: Int
    public let firstValue: Float

    public var description: String {
        "\(file): tensor '\(key)' holds \(count) non-finite value(s) (NaN or Inf; the first, \(firstValue), "
            + "at flat index \(firstIndex))"
    }
    public var errorDescription: String? { description }

    /// Throws when `tensor` holds a NaN or an infinity (one vectorised pass; a scan for the first
    /// bad index only when there is one).
    public static func check(_ tensor: Tensor, key: String, file: String) throws {
        let count = mdq_count_nonfinite(tensor.data, tensor.count)
        guard count > 0 else { return }
        let first = (0..<tensor.count).first { !tensor.data[$0].isFinite } ?? 0
        throw NonFiniteTensorError(file: file, key: key, count: count, firstIndex: first, firstValue: tensor.data[first])
    }
}
