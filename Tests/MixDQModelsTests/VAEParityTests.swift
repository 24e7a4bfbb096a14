import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels

/// fp32 parity of the VAE decoder against diffusers (fixtures: scripts/reference/make_vae_fixtures.py).
final class VAEParityTests: XCTestCase {
    static let dir = fixturesURL.appendingPathComponent("vae_tiny")
    static let vaeDir = dir.appendingPathComponent("vae")

    func loadConfig() throws -> VAEConfig { try VAEConfig.load(Self.vaeDir.appendingPathComponent("config.json")) }

    func loadDecoder(weights: WeightSource? = nil) throws -> AutoencoderKLDecoder {
        try AutoencoderKLDecoder(config: try loadConfig(), weights: try weights ?? SafetensorsWeightSource.open(folder: Self.vaeDir))
    }

    /// Decodes the io file's `latents` and compares `out` and every stored intermediate.
    func runParity(_ decoder: AutoencoderKLDecoder, _ ioName: String, label: String = "") throws -> Tensor {
        let io = try SafetensorsFile(Self.dir.appendingPathComponent(ioName))
        var traced: [String: Tensor] = [:]
        let out = try decoder.decode(latents: try io.floatTensor("latents")) { traced[$0] = $1 }
        let intermediates = io.keys.filter { $0 != "latents" && $0 != "out" }
        for key in intermediates {
            guard let got = traced[key] else { XCTFail("\(ioName): intermediate \(key) not traced"); continue }
            assertClose("vae\(label) \(ioName) \(key)", got, try io.floatTensor(key), relTol: 1e-4)
        }
        assertClose("vae\(label) \(ioName) out", out, try io.floatTensor("out"), relTol: 1e-4)
        return out
    }

    func testTinyDecoderMatchesDiffusers() throws {
        let decoder = try loadDecoder()
        _ = try runParity(decoder, "io.safetensors")
        _ = try runParity(decoder, "io_small.safetensors")
        let io = try SafetensorsFile(Self.dir.appendingPathComponent("io_small.safetensors"))
        XCTAssertEqual(Set(io.keys), Set(["latents", "out", "post_quant_conv", "conv_in", "mid",
                                          "up_block.0", "up_block.1", "up_block.2", "up_block.3"]))
    }

    func testTinyDecoderCensus() throws {
        let decoder = try loadDecoder()
        // §8.2: decoder + post_quant_conv = 819,191 params; GroupNorm affine terms are not in the registry.
        let norms = 2 * (4 * 64 + 64)                                             // mid: 2 resnets x 2 norms + group_norm
            + 2 * 2 * (6 * 64) + 2 * (64 + 5 * 32) + 2 * (6 * 32)                 // up blocks 0-1, 2 (64 -> 32), 3
            + 2 * 32                                                              // conv_norm_out
        XCTAssertEqual(decoder.parameterCount + norms, 819_191)
        let paths = decoder.layers.map(\.path)
        XCTAssertEqual(paths.first, "post_quant_conv")
        XCTAssertEqual(paths.last, "decoder.conv_out")
        XCTAssertTrue(paths.contains("decoder.mid_block.attentions.0.to_out.0"))
        XCTAssertEqual(paths.filter { $0.hasSuffix("conv_shortcut") },
                       ["decoder.up_blocks.2.resnets.0.conv_shortcut"])
        XCTAssertEqual(paths.filter { $0.contains("upsamplers") }.count, 3)
    }

    /// Full-size SDXL decoder on random weights; gated (`MIXDQ_VAE_FULLSIZE=<latent side>`, e.g. 64 for 512x512)
    /// because it takes about a minute on 2 cores. Prints time and peak RSS.
    func testFullSizeDecodeMemory() throws {
        guard let side = ProcessInfo.processInfo.environment["MIXDQ_VAE_FULLSIZE"].flatMap(Int.init) else {
            throw XCTSkip("set MIXDQ_VAE_FULLSIZE=<latent side> to run")
        }
        let (config, _, _) = try encoderLayout("sdxl_vae")
        let decoder = try AutoencoderKLDecoder(config: config, weights: RandomWeightSource(seed: 1))
        let latents = Tensor(shape: [1, 4, side, side], repeating: 0.5)
        let start = Date()
        let out = try decoder.decode(latents: latents)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(String(format: "full-size VAE decode %dx%d -> %@: %.1f s, peak RSS %.0f MB", side, side,
                     out.shape.description, Date().timeIntervalSince(start), Double(usage.ru_maxrss) / 1024))
        XCTAssertEqual(out.shape, [1, 3, 8 * side, 8 * side])
        XCTAssertTrue(out.scalars.allSatisfy(\.isFinite))
    }

    // MARK: legacy checkpoints

    /// The fixture's weights with `transform` applied to the decoder attention tensors, written to a temp file.
    func rewrittenWeights(_ transform: (String, Tensor) -> (String, Tensor)) throws -> SafetensorsWeightSource {
        let file = try SafetensorsFile(Self.vaeDir.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        var tensors: [(String, Tensor)] = []
        for key in file.keys {
            let t = try file.floatTensor(key)
            tensors.append(key.contains(".attentions.") ? transform(key, t) : (key, t))
        }
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("vae-legacy-\(ProcessInfo.processInfo.globallyUniqueString).safetensors")
        // F16 holds the fixture's F16 values exactly.
        try SafetensorsWriter.write(tensors, dtype: .f16, to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return try SafetensorsWeightSource(file: url)
    }

    func testLegacyAttentionNamesGiveTheSameOutput() throws {
        var renamed: [String] = []
        let weights = try rewrittenWeights { key, t in
            guard let legacy = VAEKeyRules.legacyKey(for: key) else { return (key, t) }
            renamed.append(legacy)
            return (legacy, t)
        }
        // encoder + decoder: 4 projections x (weight, bias) each.
        XCTAssertEqual(renamed.count, 16)
        XCTAssertTrue(renamed.contains("decoder.mid_block.attentions.0.proj_attn.weight"))
        XCTAssertTrue(renamed.contains("decoder.mid_block.attentions.0.query.bias"))
        XCTAssertFalse(weights.contains("decoder.mid_block.attentions.0.to_q.weight"))
        let decoder = try loadDecoder(weights: weights)
        // Module paths stay modern whatever the file calls them.
        XCTAssertNotNil(decoder.registry["decoder.mid_block.attentions.0.to_k"])
        let legacyOut = try runParity(decoder, "io_small.safetensors", label: " legacy-names")
        let modernOut = try loadDecoder().decode(latents: try SafetensorsFile(Self.dir.appendingPathComponent("io_small.safetensors")).floatTensor("latents"))
        XCTAssertEqual(legacyOut.scalars, modernOut.scalars, "legacy names must load the identical weights")
    }

    func testConvShapedAttentionWeightsAreSqueezed() throws {
        var reshaped = 0
        let weights = try rewrittenWeights { key, t in
            guard VAEKeyRules.isAttentionProjectionWeight(key) else { return (key, t) }
            reshaped += 1
            return (key, t.reshaped(t.shape + [1, 1]))                                // [C,C] -> [C,C,1,1]
        }
        XCTAssertEqual(reshaped, 8)
        let decoder = try loadDecoder(weights: weights)
        let out = try runParity(decoder, "io_small.safetensors", label: " conv-shaped")
        let modernOut = try loadDecoder().decode(latents: try SafetensorsFile(Self.dir.appendingPathComponent("io_small.safetensors")).floatTensor("latents"))
        XCTAssertEqual(out.scalars, modernOut.scalars)
    }

    func testOtherShapeMismatchesStillFail() throws {
        let weights = try rewrittenWeights { key, t in
            key == "decoder.mid_block.attentions.0.to_q.bias" ? (key, t.reshaped(t.shape + [1])) : (key, t)
        }
        XCTAssertThrowsError(try loadDecoder(weights: weights)) { error in
            XCTAssertTrue("\(error)".contains("decoder.mid_block.attentions.0.to_q.bias"), "\(error)")
        }
    }

    func testMissingDecoderTensorIsReported() throws {
        let weights = try rewrittenWeights { key, t in
            key == "decoder.mid_block.attentions.0.to_q.bias" ? ("decoder.mid_block.attentions.0.extra.bias", t) : (key, t)
        }
        XCTAssertThrowsError(try loadDecoder(weights: weights)) { error in
            XCTAssertTrue("\(error)".contains("missing tensor 'decoder.mid_block.attentions.0.to_q.bias'"), "\(error)")
        }
    }

    func testKeyRules() {
        XCTAssertEqual(VAEKeyRules.legacyKey(for: "decoder.mid_block.attentions.0.to_out.0.weight"),
                       "decoder.mid_block.attentions.0.proj_attn.weight")
        XCTAssertEqual(VAEKeyRules.legacyKey(for: "encoder.mid_block.attentions.0.to_v.bias"),
                       "encoder.mid_block.attentions.0.value.bias")
        XCTAssertEqual(VAEKeyRules.modernKey(for: "decoder.mid_block.attentions.0.key.weight"),
                       "decoder.mid_block.attentions.0.to_k.weight")
        XCTAssertNil(VAEKeyRules.legacyKey(for: "decoder.mid_block.attentions.0.group_norm.weight"))
        XCTAssertNil(VAEKeyRules.legacyKey(for: "decoder.mid_block.resnets.0.conv1.weight"))
        XCTAssertNil(VAEKeyRules.modernKey(for: "decoder.key.weight"))
        XCTAssertTrue(VAEKeyRules.isAttentionProjectionWeight("decoder.mid_block.attentions.0.to_q.weight"))
        XCTAssertFalse(VAEKeyRules.isAttentionProjectionWeight("decoder.mid_block.attentions.0.to_q.bias"))
    }

    // MARK: config

    func writeConfig(_ edit: (inout [String: Any]) -> Void) throws -> URL {
        let data = try Data(contentsOf: Self.vaeDir.appendingPathComponent("config.json"))
        var json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        edit(&json)
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("vae-config-\(ProcessInfo.processInfo.globallyUniqueString).json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func assertConfigError(_ url: URL, mentions key: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try VAEConfig.load(url), file: file, line: line) { error in
            let text = "\(error)"
            print("config error: \(text)")
            XCTAssertTrue(text.contains(url.path), "names the file: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(key), "names '\(key)': \(text)", file: file, line: line)
        }
    }

    func testConfigValuesAndDefaults() throws {
        let c = try loadConfig()
        XCTAssertEqual(c.blockOutChannels, [32, 32, 64, 64])
        XCTAssertEqual(c.scalingFactor, 0.13025)
        XCTAssertNil(c.shiftFactor)
        XCTAssertTrue(c.forceUpcast)
        XCTAssertEqual(c.scaleFactor, 8)
        // sdxl-turbo's file omits these; diffusers' defaults apply.
        let minimal = try writeConfig { json in
            for k in ["scaling_factor", "shift_factor", "use_quant_conv", "use_post_quant_conv", "mid_block_add_attention",
                      "latents_mean", "latents_std", "force_upcast", "norm_num_groups", "act_fn"] { json.removeValue(forKey: k) }
        }
        let d = try VAEConfig.load(minimal)
        XCTAssertEqual(d.scalingFactor, 0.18215)
        XCTAssertTrue(d.usePostQuantConv && d.useQuantConv && d.midBlockAddAttention && d.forceUpcast)
        XCTAssertEqual(d.normNumGroups, 32)
        XCTAssertEqual(d.actFn, "silu")
    }

    func testConfigMissingKeyNamesFileAndKey() throws {
        assertConfigError(try writeConfig { $0.removeValue(forKey: "block_out_channels") }, mentions: "block_out_channels")
        assertConfigError(try writeConfig { $0.removeValue(forKey: "latent_channels") }, mentions: "latent_channels")
    }

    func testConfigUnknownUpBlockNamesFileAndKey() throws {
        let url = try writeConfig { $0["up_block_types"] = ["UpDecoderBlock2D", "AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"] }
        assertConfigError(url, mentions: "up_block_types")
        assertConfigError(url, mentions: "AttnUpDecoderBlock2D")
        assertConfigError(try writeConfig { $0["act_fn"] = "gelu" }, mentions: "act_fn")
    }

    /// StableDiffusionXLPipeline: `latents * latents_std / scaling_factor + latents_mean` when both are set.
    func testLatentsMeanStdUnscaling() throws {
        let (mean, std): ([Float], [Float]) = ([0.1, -0.2, 0.3, 0.0], [1.5, 0.5, 2.0, 1.0])
        let url = try writeConfig { $0["latents_mean"] = mean; $0["latents_std"] = std }
        let decoder = try AutoencoderKLDecoder(config: try VAEConfig.load(url),
                                               weights: try SafetensorsWeightSource.open(folder: Self.vaeDir))
        let latents = try SafetensorsFile(Self.dir.appendingPathComponent("io_small.safetensors")).floatTensor("latents")
        let z = Tensor(uninitializedShape: latents.shape)
        let hw = latents.shape[2] * latents.shape[3]
        for i in 0..<latents.count { let c = (i / hw) % 4; z.data[i] = latents.data[i] * std[c] / 0.13025 + mean[c] }
        XCTAssertEqual(try decoder.decode(latents: latents).scalars, try decoder.decodeRaw(z).scalars)
        assertConfigError(try writeConfig { $0["latents_mean"] = mean }, mentions: "latents_std")
    }

    func testInputShapeIsChecked() throws {
        let decoder = try loadDecoder()
        XCTAssertThrowsError(try decoder.decode(latents: Tensor(zeros: [1, 3, 4, 4]))) { error in
            XCTAssertTrue("\(error)".contains("'latents'"), "\(error)")
        }
    }

    // MARK: encoder layout

    /// Layouts read from diffusers (make_vae_fixtures.py): `{name: {config, parameters, tensors: {key: shape}}}`.
    func encoderLayout(_ name: String) throws -> (VAEConfig, [String: [Int]], Int) {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent("encoder_layout.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let entry = root[name] as! [String: Any]
        let config = try JSONDecoder().decode(VAEConfig.self, from: try JSONSerialization.data(withJSONObject: entry["config"]!))
        return (config, entry["tensors"] as! [String: [Int]], entry["parameters"] as! Int)
    }

    func checkEncoderLayout(_ name: String) throws {
        let (config, expected, params) = try encoderLayout(name)
        let got = try AutoencoderKLEncoderLayout.tensorShapes(config: config)
        XCTAssertEqual(Set(got.map(\.key)).count, got.count, "\(name): a key requested twice")
        let gotMap = Dictionary(got.map { ($0.key, $0.shape) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(Set(gotMap.keys).subtracting(expected.keys).sorted(), [], "\(name): keys diffusers does not have")
        XCTAssertEqual(Set(expected.keys).subtracting(gotMap.keys).sorted(), [], "\(name): keys missing")
        for (k, s) in expected where gotMap[k] != nil { XCTAssertEqual(gotMap[k], s, "\(name): \(k)") }
        XCTAssertEqual(got.reduce(0) { $0 + $1.shape.reduce(1, *) }, params)
        print("encoder layout \(name): \(got.count) tensors, \(params) params, matches diffusers")
    }

    func testEncoderLayoutMatchesDiffusersTiny() throws { try checkEncoderLayout("vae_tiny") }
    func testEncoderLayoutMatchesDiffusersSDXL() throws { try checkEncoderLayout("sdxl_vae") }

    /// With the decoder, the layout accounts for every tensor of a real diffusers `vae/` file.
    func testEncoderLayoutPlusDecoderCoverTheFixtureFile() throws {
        let weights = try SafetensorsWeightSource.open(folder: Self.vaeDir)
        _ = try loadDecoder(weights: weights)
        try AutoencoderKLEncoderLayout.requestAll(ModuleLoader(weights: weights), config: try loadConfig())
        XCTAssertEqual(weights.unusedKeys, [])
        try weights.finish()
    }
}
