import Foundation
import XCTest
import MixDQModels

/// Every number a model's config.json or scheduler_config.json feeds into sizes, divisions or
/// ranges is checked where it is read: out-of-range, zero, negative, non-dividing, mis-sized and
/// absurdly large values are errors naming the file and the key, never a trap further in.
/// (The probe cases of issue 7, and one more per class.)
final class ConfigBoundsTests: XCTestCase {
    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-bounds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    typealias Edit = (inout [String: Any]) -> Void

    /// Writes `source` edited into `dir/<label>/config.json`.
    private func edited(_ source: URL, _ dir: URL, _ label: String, _ edit: Edit) throws -> URL {
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as! [String: Any]
        edit(&object)
        let folder = dir.appendingPathComponent(label)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("config.json")
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url)
        return url
    }

    /// Each case must fail to load with an error naming the file and every one of `mentions`.
    private func assertRejected<T>(_ source: URL, _ load: (URL) throws -> T, _ cases: [(String, Edit, [String])],
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try temporaryDirectory()
        // The unedited file loads: every failure below is the edit's.
        XCTAssertNoThrow(try load(try edited(source, dir, "unedited") { _ in }), file: file, line: line)
        for (label, edit, mentions) in cases {
            let url = try edited(source, dir, label, edit)
            XCTAssertThrowsError(try load(url), label, file: file, line: line) { error in
                let message = error.localizedDescription
                for m in [url.path] + mentions {
                    XCTAssertTrue(message.contains(m), "\(label): '\(message)' should mention '\(m)'", file: file, line: line)
                }
            }
        }
    }

    static let sdxlUNet = fixturesURL.appendingPathComponent("unet_sdxl_tiny/unet/config.json")
    static let sd15UNet = fixturesURL.appendingPathComponent("unet_sd15_tiny/unet/config.json")

    // MARK: UNet

    func testUNetSizesMustBePositiveAndBounded() throws {
        let cases: [(String, Edit, [String])] = [
            ("groups-0", { $0["norm_num_groups"] = 0 }, ["norm_num_groups", "got 0"]),
            ("groups-negative", { $0["norm_num_groups"] = -32 }, ["norm_num_groups", "got -32"]),
            ("layers-negative", { $0["layers_per_block"] = -1 }, ["layers_per_block", "got -1"]),
            ("layers-0", { $0["layers_per_block"] = 0 }, ["layers_per_block"]),
            ("layers-huge", { $0["layers_per_block"] = Int.max }, ["layers_per_block", "\(Int.max)"]),
            ("depth-negative", { $0["transformer_layers_per_block"] = [1, -1, 2] }, ["transformer_layers_per_block[1]", "got -1"]),
            ("depth-zero", { $0["transformer_layers_per_block"] = 0 }, ["transformer_layers_per_block", "got 0"]),
            // get_guidance_scale_embedding divides by time_cond_proj_dim / 2 - 1.
            ("time-cond-proj-2", { $0["time_cond_proj_dim"] = 2 }, ["time_cond_proj_dim", "got 2"]),
            ("depth-huge", { $0["transformer_layers_per_block"] = [1, 1, 1_000_000] }, ["transformer_layers_per_block[2]"]),
            ("reverse-depth-zero", { $0["reverse_transformer_layers_per_block"] = [2, 0, 1] },
             ["reverse_transformer_layers_per_block[1]", "got 0"]),
            ("heads-zero", { $0["num_attention_heads"] = [0, 0, 0] }, ["num_attention_heads[0]", "got 0"]),
            ("head-dim-zero", { $0["attention_head_dim"] = 0 }, ["attention_head_dim", "got 0"]),
            ("head-dim-negative", { $0["attention_head_dim"] = [2, -4, 6] }, ["attention_head_dim[1]", "got -4"]),
            ("channels-huge", { $0["block_out_channels"] = [32, 64, 1 << 40] }, ["block_out_channels[2]"]),
            ("channels-zero", { $0["block_out_channels"] = [0, 64, 96] }, ["block_out_channels[0]"]),
            ("in-channels-zero", { $0["in_channels"] = 0 }, ["in_channels"]),
            ("out-channels-huge", { $0["out_channels"] = Int.max }, ["out_channels"]),
            ("cross-dim-negative", { $0["cross_attention_dim"] = -80 }, ["cross_attention_dim"]),
            ("levels-too-many", { c in
                c["block_out_channels"] = Array(repeating: 32, count: 9)
                c["down_block_types"] = Array(repeating: "DownBlock2D", count: 9)
                c["up_block_types"] = Array(repeating: "UpBlock2D", count: 9)
                c["attention_head_dim"] = 2; c["transformer_layers_per_block"] = 1
            }, ["block_out_channels"]),
            ("sample-size-huge", { $0["sample_size"] = 1 << 40 }, ["sample_size"]),
            ("eps-negative", { $0["norm_eps"] = -1e-5 }, ["norm_eps"]),
            ("time-dim-zero", { $0["addition_time_embed_dim"] = 0 }, ["addition_time_embed_dim"]),
            ("projection-too-small", { $0["projection_class_embeddings_input_dim"] = 48 }, ["projection_class_embeddings_input_dim"]),
        ]
        try assertRejected(Self.sdxlUNet, UNetConfig.load, cases)
    }

    func testUNetKernelsPaddingAndShiftAreBounded() throws {
        let cases: [(String, Edit, [String])] = [
            ("conv-out-min", { $0["conv_out_kernel"] = Int.min }, ["conv_out_kernel", "\(Int.min)"]),
            ("conv-in-min", { $0["conv_in_kernel"] = Int.min }, ["conv_in_kernel"]),
            ("conv-in-even", { $0["conv_in_kernel"] = 4 }, ["conv_in_kernel", "odd"]),
            ("conv-out-huge", { $0["conv_out_kernel"] = 17 }, ["conv_out_kernel", "got 17"]),
            ("shift-min", { $0["freq_shift"] = Int.min }, ["freq_shift", "\(Int.min)"]),
            ("shift-max", { $0["freq_shift"] = Int.max }, ["freq_shift"]),
            // addition_time_embed_dim 8: half is 4, so a shift of 4 divides by zero.
            ("shift-half", { $0["freq_shift"] = 4 }, ["freq_shift", "0...3"]),
            ("padding-negative", { $0["downsample_padding"] = -5 }, ["downsample_padding", "got -5"]),
            ("padding-zero", { $0["downsample_padding"] = 0 }, ["downsample_padding", "got 0"]),
        ]
        try assertRejected(Self.sdxlUNet, UNetConfig.load, cases)
    }

    func testUNetDivisibilityAndListLengths() throws {
        let cases: [(String, Edit, [String])] = [
            // 32 channels in 3 groups
            ("groups-not-dividing", { $0["norm_num_groups"] = 3 }, ["norm_num_groups 3", "block_out_channels[0]"]),
            // level 2 (96 channels, cross-attention in down block 2, up block 0 and the mid block) in 7 heads
            ("heads-not-dividing", { $0["attention_head_dim"] = [2, 4, 7] }, ["attention_head_dim", "7 heads", "96 channels"]),
            ("num-heads-not-dividing", { $0["num_attention_heads"] = [2, 5, 6] }, ["num_attention_heads", "5 heads", "64 channels"]),
            ("heads-list-short", { $0["num_attention_heads"] = [0] }, ["num_attention_heads", "1 entries", "expected 3"]),
            ("reverse-list-short", { $0["reverse_transformer_layers_per_block"] = [0] },
             ["reverse_transformer_layers_per_block", "1 entries", "expected 3"]),
            ("reverse-list-long", { $0["reverse_transformer_layers_per_block"] = [1, 1, 1, 1] },
             ["reverse_transformer_layers_per_block", "4 entries"]),
            ("depth-list-short", { $0["transformer_layers_per_block"] = [1, 1] }, ["transformer_layers_per_block", "2 entries"]),
            ("head-dim-list-long", { $0["attention_head_dim"] = [2, 4, 6, 8] }, ["attention_head_dim", "4 entries"]),
            ("down-types-short", { $0["down_block_types"] = ["DownBlock2D"] }, ["down_block_types", "1 entries"]),
            ("unsupported-center", { $0["center_input_sample"] = true }, ["center_input_sample"]),
            ("unsupported-mid-scale", { $0["mid_block_scale_factor"] = 2 }, ["mid_block_scale_factor"]),
        ]
        try assertRejected(Self.sdxlUNet, UNetConfig.load, cases)
        // SD1.5 style: one head count for every level, checked at each level that attends.
        try assertRejected(Self.sd15UNet, UNetConfig.load, [
            ("sd15-heads", { $0["attention_head_dim"] = 3 }, ["attention_head_dim", "3 heads", "32 channels", "down block 0"]),
        ])
    }

    /// The values real configs use stay accepted at the edges of each bound.
    func testUNetBoundsAcceptRealValues() throws {
        let dir = try temporaryDirectory()
        let ok: [(String, Edit)] = [
            ("shift-3", { $0["freq_shift"] = 3 }),
            ("kernel-1", { $0["conv_in_kernel"] = 1; $0["conv_out_kernel"] = 15 }),
            ("heads-explicit", { $0["num_attention_heads"] = [1, 4, 6]; $0["attention_head_dim"] = 64 }),
            ("reverse", { $0["reverse_transformer_layers_per_block"] = [2, 1, 1] }),
            ("groups-16", { $0["norm_num_groups"] = 16 }),
            // Level 0 (32 channels) has no attention (DownBlock2D / UpBlock2D, no mid block there):
            // its head count is never used, as in diffusers.
            ("heads-unused-level", { $0["attention_head_dim"] = [3, 4, 6] }),
            ("time-cond-proj", { $0["time_cond_proj_dim"] = 256 }),
        ]
        for (label, edit) in ok {
            XCTAssertNoThrow(try UNetConfig.load(try edited(Self.sdxlUNet, dir, label, edit)), label)
        }
    }

    /// The full-size SDXL-Turbo configs in configs/models pass every bound.
    func testFullSizeSDXLConfigsAreAccepted() throws {
        let models = fixturesURL.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("configs/models")
        let unet = try UNetConfig.load(models.appendingPathComponent("sdxl-turbo-unet.json"))
        XCTAssertEqual(unet.blockOutChannels, [320, 640, 1280])
        XCTAssertEqual(try VAEConfig.load(models.appendingPathComponent("sdxl-turbo-vae.json")).latentChannels, 4)
        XCTAssertEqual(try CLIPTextConfig.load(models.appendingPathComponent("sdxl-turbo-text-encoder.json")).hiddenSize, 768)
        XCTAssertEqual(try CLIPTextConfig.load(models.appendingPathComponent("sdxl-turbo-text-encoder-2.json")).hiddenSize, 1280)
    }

    // MARK: VAE and CLIP

    func testVAESizesAreBounded() throws {
        let source = fixturesURL.appendingPathComponent("vae_tiny/vae/config.json")
        let cases: [(String, Edit, [String])] = [
            ("layers-max", { $0["layers_per_block"] = Int.max }, ["layers_per_block", "\(Int.max)"]),
            ("layers-huge", { $0["layers_per_block"] = 65 }, ["layers_per_block", "got 65"]),
            ("latent-zero", { $0["latent_channels"] = 0 }, ["latent_channels"]),
            ("out-huge", { $0["out_channels"] = 1 << 40 }, ["out_channels"]),
            ("channels-huge", { $0["block_out_channels"] = [32, 32, 64, 1 << 40] }, ["block_out_channels"]),
            ("groups-negative", { $0["norm_num_groups"] = -32 }, ["norm_num_groups"]),
            ("std-zero", { $0["latents_mean"] = [0, 0, 0, 0]; $0["latents_std"] = [1, 0, 1, 1] }, ["latents_std"]),
        ]
        try assertRejected(source, VAEConfig.load, cases)
    }

    func testCLIPSizesAreBounded() throws {
        let source = fixturesURL.appendingPathComponent("clip_tiny/text_encoder_2/config.json")
        let cases: [(String, Edit, [String])] = [
            ("hidden-huge", { $0["hidden_size"] = 1 << 40 }, ["hidden_size", "at most"]),
            ("vocab-max", { $0["vocab_size"] = Int.max }, ["vocab_size"]),
            ("layers-huge", { $0["num_hidden_layers"] = 1_000_000 }, ["num_hidden_layers"]),
            ("layers-zero", { $0["num_hidden_layers"] = 0 }, ["num_hidden_layers", "positive"]),
            ("heads-not-dividing", { $0["num_attention_heads"] = 5 }, ["num_attention_heads"]),
            ("positions-huge", { $0["max_position_embeddings"] = 1 << 30 }, ["max_position_embeddings"]),
            ("projection-huge", { $0["projection_dim"] = 1 << 30 }, ["projection_dim"]),
            ("eps-zero", { $0["layer_norm_eps"] = 0 }, ["layer_norm_eps"]),
        ]
        try assertRejected(source, CLIPTextConfig.load, cases)
    }

    // MARK: scheduler

    func testSchedulerBetasAndTimestepsAreBounded() throws {
        let dir = try temporaryDirectory()
        let base = dir.appendingPathComponent("base.json")
        try Data(#"{"_class_name": "EulerAncestralDiscreteScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "steps_offset": 1, "timestep_spacing": "trailing"}"#.utf8).write(to: base)
        let cases: [(String, Edit, [String])] = [
            ("beta-end-negative", { $0["beta_end"] = -1 }, ["beta_end", "-1"]),
            ("beta-end-two", { $0["beta_end"] = 2 }, ["beta_end", "2"]),
            ("beta-end-one", { $0["beta_end"] = 1 }, ["beta_end"]),
            ("beta-start-zero", { $0["beta_start"] = 0 }, ["beta_start"]),
            ("beta-start-above-end", { $0["beta_start"] = 0.5; $0["beta_end"] = 0.1 }, ["beta_start", "greater than beta_end"]),
            // Valid betas, but alphas_cumprod underflows float32 long before t = 999: sigma is infinite.
            ("cumprod-underflow", { $0["beta_end"] = 0.9; $0["beta_schedule"] = "linear" }, ["beta_end", "underflows"]),
            ("timesteps-zero", { $0["num_train_timesteps"] = 0 }, ["num_train_timesteps"]),
            ("timesteps-negative", { $0["num_train_timesteps"] = -5 }, ["num_train_timesteps"]),
            ("timesteps-huge", { $0["num_train_timesteps"] = 1_000_000_000_000 }, ["num_train_timesteps"]),
            ("offset-negative", { $0["steps_offset"] = -1 }, ["steps_offset"]),
            ("offset-huge", { $0["steps_offset"] = Int.max }, ["steps_offset"]),
            ("trained-betas-one", { c in
                c["num_train_timesteps"] = 4; c["trained_betas"] = [0.1, 0.2, 1.0, 0.3]
            }, ["trained_betas", "index 2"]),
        ]
        try assertRejected(base, { try SchedulerConfig.load(from: $0) }, cases)
    }

    /// A fractional number where an integer belongs names the key (Foundation alone would only
    /// say "not valid JSON").
    func testFractionalNumberInAnIntegerFieldNamesTheKey() throws {
        try assertRejected(Self.sdxlUNet, UNetConfig.load, [
            ("fractional layers", { $0["layers_per_block"] = 2.5 }, ["layers_per_block", "integer"]),
            ("fractional list entry", { $0["block_out_channels"] = [32, 64.5, 96] }, ["block_out_channels", "integer"]),
        ])
        let clip = fixturesURL.appendingPathComponent("clip_tiny/text_encoder_2/config.json")
        try assertRejected(clip, CLIPTextConfig.load, [
            ("fractional hidden size", { $0["hidden_size"] = 32.5 }, ["hidden_size", "integer"]),
        ])
    }
}
