import ArgumentParser
import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// `mixdq forward vae-decoder`: decode latents with a diffusers AutoencoderKL (`vae/`), in fp32.
struct ForwardVAEDecoder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae-decoder",
        abstract: "Decode latents with the VAE decoder (AutoencoderKL.decode), in fp32.",
        discussion: """
        The input file holds 'latents' [B, latent_channels, h, w]: scheduler latents, unscaled as the SDXL \
        pipeline does (latents / scaling_factor, or latents * latents_std / scaling_factor + latents_mean when \
        the config sets both) and then decoded. Alternatively it holds 'z', already unscaled, which is decoded \
        as is (AutoencoderKL.decode(z)).

        The output 'out' is the decoded image [B, out_channels, 8h, 8w], NCHW, about [-1, 1] (before the \
        pipeline's x/2 + 0.5 and clamp).

        --model is a pipeline folder holding vae/, or the vae/ folder itself. The VAE always runs in fp32 \
        because it overflows in reduced precision: --precision bf16 falls back to fp32 with a note.
        """)
    @OptionGroup var io: ForwardIO

    func run() throws {
        if io.precision != .fp32 {
            StandardError.write("note: the VAE decoder runs in fp32 (it overflows in reduced precision); ignoring --precision \(io.precision.rawValue)\n")
        }
        let dir = try ModelFolder(URL(fileURLWithPath: io.model)).component("vae")
        let config = try VAEConfig.load(dir.appendingPathComponent("config.json"))
        let decoder = try AutoencoderKLDecoder(config: config, weights: try SafetensorsWeightSource.open(folder: dir), packForInference: true)
        let file = try SafetensorsFile(URL(fileURLWithPath: io.input))
        let out: Tensor
        do {
            switch (file.contains("latents"), file.contains("z")) {
            case (true, false): out = try decoder.decode(latents: try file.floatTensor("latents"))
            case (false, true): out = try decoder.decodeRaw(try file.floatTensor("z"))
            case (true, true): throw CommandError("\(io.input): holds both 'latents' and 'z'; give exactly one")
            case (false, false): throw CommandError("\(io.input): missing input tensor 'latents' (or 'z')")
            }
        } catch let error as VAEInputError {
            throw CommandError("\(io.input): \(error.message)")   // the shape error names the tensor; this names the file
        }
        try SafetensorsWriter.write([("out", out)], to: URL(fileURLWithPath: io.output))
    }
}
