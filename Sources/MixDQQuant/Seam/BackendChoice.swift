import MixDQCompute

/// `--precision bf16` asked of a backend that runs its float layers in fp32 only.
public struct PrecisionChoiceError: Error, CustomStringConvertible {
    public let description: String
}

/// `--backend`: which `QuantBackend` runs a quantized model.
public enum BackendChoice: String, CaseIterable, Sendable {
    /// int8 where every layer, as configured, has an integer path; fake quant otherwise (said in the log).
    case automatic = "auto"
    case fake
    case int8
    /// W·A layers on an NVIDIA GPU through kernels/libmixdq_cuda.so (dlopen()ed; a clear error without it).
    case cuda

    /// Why this backend cannot run A16 and FP layers in `floatPrecision` (nil when it can): only the
    /// int8 backend has bf16 ones (fake quant simulates in fp32; the CUDA backend's CPU side is fp32).
    public func unsupportedReason(floatPrecision: Precision) -> String? {
        guard floatPrecision != .fp32, self == .fake || self == .cuda else { return nil }
        return "--precision \(floatPrecision.rawValue) runs the UNet's A16 and FP layers in \(floatPrecision.rawValue) on --backend int8; --backend \(rawValue) runs them in fp32: drop --precision or use --backend int8"
    }

    /// The backend to deploy, and a line saying why when the choice was made for the user.
    /// `floatPrecision` is what A16 and FP layers run in (`unsupportedReason(floatPrecision:)`).
    public func resolve(for sim: QuantSimulator, floatPrecision: Precision = .fp32) throws -> (backend: QuantBackend, note: String?) {
        let int8 = Int8Backend(floatPrecision: floatPrecision)
        let precisionNote = Int8Backend.floatLayersNote(floatPrecision)
        if let reason = unsupportedReason(floatPrecision: floatPrecision) { throw PrecisionChoiceError(description: reason) }
        switch self {
        case .fake: return (FakeQuantBackend(), nil)
        case .int8:
            let missing = sim.unsupported(on: int8)
            if let first = missing.first {
                throw QuantBackendError(backend: "int8", path: first.path,
                                        reason: first.reason + (missing.count > 1 ? " (and \(missing.count - 1) more layer(s)); use --backend fake" : "; use --backend fake"))
            }
            return (int8, floatPrecision == .fp32 ? nil : "backend: int8" + precisionNote)
        case .cuda:
            // The library and device first: on a machine without them that is the message that matters.
            let cuda = try CUDABackend()
            let missing = sim.unsupported(on: cuda)
            if let first = missing.first {
                throw QuantBackendError(backend: "cuda", path: first.path,
                                        reason: first.reason + (missing.count > 1 ? " (and \(missing.count - 1) more layer(s)); use --backend fake" : "; use --backend fake"))
            }
            return (cuda, "backend: cuda (\(cuda.library.deviceDescription), \(cuda.library.path)); FP and weight-only layers on the CPU")
        case .automatic:
            let missing = sim.unsupported(on: int8)
            guard let first = missing.first else { return (int8, "backend: int8 (every layer has an integer path)" + precisionNote) }
            if floatPrecision != .fp32 {
                throw QuantBackendError(backend: "int8", path: first.path,
                                        reason: first.reason + "; --precision \(floatPrecision.rawValue) needs the int8 backend (fake quant simulates in fp32): drop --precision")
            }
            return (FakeQuantBackend(),
                    "backend: fake quant (fp32 simulation): \(missing.count) layer(s) have no int8 path, e.g. '\(first.path)': \(first.reason)")
        }
    }
}
