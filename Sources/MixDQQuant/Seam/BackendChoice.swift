/// `--backend`: which `QuantBackend` runs a quantized model.
public enum BackendChoice: String, CaseIterable, Sendable {
    /// int8 where every layer, as configured, has an integer path; fake quant otherwise (said in the log).
    case automatic = "auto"
    case fake
    case int8
    /// W·A layers on an NVIDIA GPU through kernels/libmixdq_cuda.so (dlopen()ed; a clear error without it).
    case cuda

    /// The backend to deploy, and a line saying why when the choice was made for the user.
    public func resolve(for sim: QuantSimulator) throws -> (backend: QuantBackend, note: String?) {
        switch self {
        case .fake: return (FakeQuantBackend(), nil)
        case .int8:
            let missing = sim.unsupported(on: Int8Backend())
            if let first = missing.first {
                throw QuantBackendError(backend: "int8", path: first.path,
                                        reason: first.reason + (missing.count > 1 ? " (and \(missing.count - 1) more layer(s)); use --backend fake" : "; use --backend fake"))
            }
            return (Int8Backend(), nil)
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
            let missing = sim.unsupported(on: Int8Backend())
            guard let first = missing.first else { return (Int8Backend(), "backend: int8 (every layer has an integer path)") }
            return (FakeQuantBackend(),
                    "backend: fake quant (fp32 simulation): \(missing.count) layer(s) have no int8 path, e.g. '\(first.path)': \(first.reason)")
        }
    }
}
