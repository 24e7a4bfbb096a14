import MixDQCompute

/// Whether a component's Winograd convolutions pay for their one-off weight transform within a job.
///
/// oneDNN 2.6 transforms a Winograd layer's weights on its first call, and slowly. Measured on
/// full-size SDXL-Turbo components at 512×512 (Sapphire Rapids, 2 cores, oneDNN verbose): the fp32
/// UNet's transforms take ~4.0 s against ~1.0-1.2 s saved per forward, the VAE decoder's ~2.9 s
/// against ~4-6 s saved per decode. The time saved grows with the rows and pixels a run convolves;
/// the transform does not. So a job runs a component's convolutions as Winograd (`auto`) when its
/// runs, counted in single-row 512×512 equivalents, reach the break-even, and direct otherwise: a
/// one-step single image keeps a direct UNet and still gets the VAE's Winograd.
public enum WinogradPayback {
    /// UNet forwards (rows, 512×512 equivalents) from which Winograd pays: transform / saving per forward.
    public static let unetBreakEven = 4.0
    /// VAE decodes (512×512 equivalents) from which Winograd pays.
    public static let vaeBreakEven = 1.0

    /// The UNet's choice for `forwards` forwards of `rows` rows each (2 with classifier-free guidance).
    public static func unet(forwards: Int, rows: Int, height: Int, width: Int,
                            under choice: ConvolutionAlgorithm = ConvolutionAlgorithm.current) -> ConvolutionAlgorithm {
        decide(runs: forwards * rows, height: height, width: width, breakEven: unetBreakEven, under: choice)
    }

    /// The VAE decoder's choice for `decodes` images.
    public static func vae(decodes: Int, height: Int, width: Int,
                           under choice: ConvolutionAlgorithm = ConvolutionAlgorithm.current) -> ConvolutionAlgorithm {
        decide(runs: decodes, height: height, width: width, breakEven: vaeBreakEven, under: choice)
    }

    private static func decide(runs: Int, height: Int, width: Int, breakEven: Double,
                               under choice: ConvolutionAlgorithm) -> ConvolutionAlgorithm {
        guard choice == .auto else { return choice }
        let equivalents = Double(runs) * Double(height * width) / Double(512 * 512)
        return equivalents >= breakEven ? .auto : .direct
    }
}
