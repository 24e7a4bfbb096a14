import Foundation
import MixDQCompute

/// NaN or ±Inf appeared during generation (weights that overflow, an extreme guidance scale, a
/// broken scheduler config). Generation stops at the first step where it happens, instead of
/// writing a black image as if all were well.
public struct NonFiniteValuesError: Error, CustomStringConvertible, LocalizedError {
    public let what: String
    public let step: Int?
    public let timestep: Float?
    public let count: Int
    public let total: Int

    public var description: String {
        var at = ""
        if let step { at = " at step \(step)" + (timestep.map { " (timestep \($0))" } ?? "") }
        return "\(count) of \(total) values of the \(what) are NaN or infinite\(at)"
    }
    public var errorDescription: String? { description }

    /// Throws when `t` holds a non-finite value. Latents and UNet outputs are small (C·h·w per
    /// image), so a scalar pass is cheap next to the UNet.
    public static func check(_ t: Tensor, _ what: String, step: Int?, timestep: Float?) throws {
        var bad = 0
        for i in 0..<t.count where !t.data[i].isFinite { bad += 1 }
        if bad > 0 { throw NonFiniteValuesError(what: what, step: step, timestep: timestep, count: bad, total: t.count) }
    }
}
