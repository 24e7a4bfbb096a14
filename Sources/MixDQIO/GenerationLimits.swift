/// Upper bounds on the sizes a user can ask for (flags and config keys), checked where they enter
/// so no product of them can overflow or ask for an absurd allocation deeper in.
public enum GenerationLimits {
    /// Image side in pixels: 4x SDXL's native 1024. A 4096x4096 image is a 512x512 latent; beyond
    /// that the UNet's self-attention alone needs tens of GiB per head and a run takes hours, so a
    /// larger value is far more likely a typo than a wish. Sides must also be multiples of 8 (the
    /// VAE's factor).
    public static let maxImageSide = 4096
    /// Images per run (one PNG each; the prompt list is held in memory).
    public static let maxImages = 1_000_000
    /// Images per pipeline call (every activation scales with it).
    public static let maxBatchSize = 256
    /// Denoising steps: the schedulers have 1000 training timesteps; more steps cannot be spaced.
    public static let maxSteps = 1000

    /// Why `value` is not a usable image side, or nil.
    public static func imageSideProblem(_ value: Int) -> String? {
        guard value >= 8 && value <= maxImageSide else { return "must be between 8 and \(maxImageSide), found \(value)" }
        guard value % 8 == 0 else { return "must be a multiple of 8 (the VAE's factor), found \(value)" }
        return nil
    }

    /// Why `value` is not within `1...max`, or nil.
    public static func countProblem(_ value: Int, max: Int) -> String? {
        (1...max).contains(value) ? nil : "must be between 1 and \(max), found \(value)"
    }
}
