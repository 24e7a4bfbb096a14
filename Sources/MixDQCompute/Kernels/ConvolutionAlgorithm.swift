import Foundation

/// How the fp32 oneDNN convolutions compute.
///
/// `auto` (the default) runs a 3×3 stride-1 fp32 convolution with at least 64 input and output
/// channels and an output of at least 32×32 as a Winograd convolution where oneDNN implements one
/// for the CPU (F(4×4,3×3) preferred, AVX-512 in oneDNN 2.6), direct otherwise; inputs above
/// 4 Mi elements per sample run in bands of rows (`WinogradBands`). Image jobs choose per component
/// whether the one-off weight transform pays back (MixDQPipeline's `WinogradPayback`). Measured on
/// the SDXL UNet's 3×3 convolutions: 2.3-2.7× faster than direct, and its error against an fp64
/// reference of the same order as direct's (both ~1e-7 relative RMS), so it stays an fp32
/// computation. The cost is memory: F(4×4,3×3) stores 6×6 transformed values per 3×3 kernel (4×
/// the weight bytes), and the layer keeps its fp32 weights too, since the transformed layout depends
/// on the input size. Hence the 32×32 floor: there a weight byte serves enough output pixels (at
/// 512×512 the UNet's 320- and 640-channel levels: most of the time saved for a quarter of the
/// memory the 1280-channel level would add). `direct` restores direct convolution everywhere (the
/// smaller footprint; the same summation as before). bf16 convolutions are always direct.
public enum ConvolutionAlgorithm: String, CaseIterable, Sendable {
    case auto
    case direct

    public static let environmentVariable = "MIXDQ_CONV_ALGORITHM"

    /// The process-wide choice, read from `MIXDQ_CONV_ALGORITHM` (unset: `auto`). A `DNNLConvolution`
    /// takes it when it is made, unless given another.
    nonisolated(unsafe) public static var current: ConvolutionAlgorithm = (try? fromEnvironment()) ?? .auto

    /// Runs `body` with `current` set to `choice`, so the layers made inside take it, then restores it.
    public static func during<R>(_ choice: ConvolutionAlgorithm, _ body: () throws -> R) rethrows -> R {
        let previous = current
        current = choice
        defer { current = previous }
        return try body()
    }

    /// Parses `MIXDQ_CONV_ALGORITHM`; an unknown value is an error naming the variable and the choices.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ConvolutionAlgorithm {
        guard let text = environment[environmentVariable], !text.isEmpty else { return .auto }
        guard let value = ConvolutionAlgorithm(rawValue: text.lowercased()) else {
            throw ConvolutionAlgorithmError(value: text)
        }
        return value
    }

    /// Largest input per sample (channels x pixels) one Winograd call stages; larger inputs run in
    /// bands of rows. oneDNN's transformed tiles and our blocked staging copies grow with the input
    /// of a call: a VAE decoder at 512x512 in whole calls peaked at 3.6-4.2 GiB, 1.5 GiB direct.
    public static let maximumWinogradInputElements = 4 << 20

    /// Whether a convolution of this geometry runs as Winograd under this choice (when oneDNN has it).
    func prefersWinograd(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int,
                         outputHeight: Int, outputWidth: Int, precision: Precision) -> Bool {
        // Below 64 channels or 8x8 outputs oneDNN's Winograd was measured slower than direct; below
        // 32x32 outputs it still wins, but saves little time for 4x the weight memory.
        self == .auto && precision == .fp32 && kernelSize == 3 && stride == 1
            && min(inChannels, outChannels) >= 64 && outputHeight * outputWidth >= 32 * 32
    }
}

public struct ConvolutionAlgorithmError: Error, CustomStringConvertible, LocalizedError {
    public let value: String
    public var description: String {
        "\(ConvolutionAlgorithm.environmentVariable)=\(value) is not a convolution algorithm; use one of: "
            + ConvolutionAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
    }
    public var errorDescription: String? { description }
}
