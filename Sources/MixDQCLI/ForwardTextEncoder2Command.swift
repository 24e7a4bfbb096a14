import ArgumentParser

/// `mixdq forward text-encoder-2`: SDXL's text_encoder_2 (CLIPTextModelWithProjection) on `input_ids`.
struct ForwardTextEncoder2: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text-encoder-2",
        abstract: "Run text_encoder_2 on 'input_ids' [B,T] (float32 or int64); writes 'out' (hidden_states[-2]), "
            + "'last_hidden_state', 'text_embeds'.")
    @OptionGroup var io: ForwardIO

    func run() throws { try TextEncoderForward.run(component: "text_encoder_2", io: io) }
}
