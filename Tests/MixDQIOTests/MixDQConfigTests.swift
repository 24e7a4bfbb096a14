import Foundation
import MixDQIO
import XCTest

private let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let configFixtures = repoRoot.appendingPathComponent("Tests/Fixtures/config")

final class MixDQConfigTests: XCTestCase {
    /// A minimal valid config; tests edit one line of it.
    private static let base = """
    model:
        model_id: "stabilityai/sdxl-turbo"
        model_type: 'sdxl'
    calib_data:
        path: "calib.h5"
        n_steps: 1
        batch_size: 8
        n_samples: 32
        scale_value: 0.
    quant:
        weight:
            quantizer:
                n_bits: 8
                channel_wise: True
                scale_method: 'min_max'
        activation:
            quantizer:
                n_bits: 8
                channel_wise: False
                scale_method: 'min_max'
    """

    private let fakeSource = URL(fileURLWithPath: "/cfgroot/configs/test.yaml")

    private func parse(_ yaml: String) throws -> MixDQConfig {
        try MixDQConfig.parse(yaml: yaml, sourceURL: fakeSource)
    }

    /// The 1-based line of the first line containing `text`.
    private func line(of text: String, in yaml: String) -> Int {
        yaml.components(separatedBy: "\n").firstIndex { $0.contains(text) }! + 1
    }

    private func assertError(_ yaml: String, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(yaml), file: file, line: line) { error in
            XCTAssertTrue(error is ConfigError, "\(type(of: error))", file: file, line: line)
            let text = "\(error)"
            for part in parts + [fakeSource.path] {
                XCTAssertTrue(text.contains(part), "'\(part)' missing from: \(text)", file: file, line: line)
            }
        }
    }

    // MARK: Shipped and original files

    func testOriginalFileLoadsUnchanged() throws {
        let url = configFixtures.appendingPathComponent("original_sdxl_turbo.yaml")
        let c = try MixDQConfig.load(url)
        XCTAssertEqual(c.model.modelID, "stabilityai/sdxl-turbo")
        XCTAssertEqual(c.model.cacheDir, "/share/public/diffusion_quant/huggingface/")
        XCTAssertEqual(c.model.modelType, .sdxl)
        XCTAssertNil(c.model.adapterID)
        XCTAssertNil(c.model.path)
        XCTAssertTrue(c.conditional)
        XCTAssertEqual(c.mixedPrecision, [2, 4, 8])
        XCTAssertEqual(c.calibData.path, "/share/public/diffusion_quant/calib_dataset/bs32_t1_sdxl.pt")
        XCTAssertEqual(c.calibData.nSteps, 1)
        XCTAssertEqual(c.calibData.batchSize, 8)
        XCTAssertEqual(c.calibData.nSamples, 32)
        XCTAssertEqual(c.calibData.scaleType, "fix")
        XCTAssertEqual(c.calibData.scaleValue, 0.0)
        XCTAssertNil(c.calibData.height)
        let w = c.quant.weight.quantizer
        XCTAssertEqual(w.nBits, 8)
        XCTAssertTrue(w.sym)
        XCTAssertTrue(w.channelWise)
        XCTAssertEqual(w.scaleMethod, "min_max")
        XCTAssertEqual(w.roundMode, "nearest")
        let a = c.quant.activation.quantizer
        XCTAssertEqual(a.nBits, 8)
        XCTAssertFalse(a.channelWise)
        XCTAssertEqual(a.roundMode, "nearest_ste")
        XCTAssertTrue(a.runningStat)
        XCTAssertTrue(a.bosAware)
        XCTAssertFalse(a.emaCompatRepeat)
        XCTAssertFalse(c.quant.gradCheckpoint)
        XCTAssertNil(c.resumeWithWQuantized?.path)
        XCTAssertNotNil(c.resumeWithWQuantized)
        // No captions key: the shipped default is found above the fixture folder.
        XCTAssertEqual(try c.captionsURL().path,
                       repoRoot.appendingPathComponent("assets/coco/captions_mixdq_default.json").standardizedFileURL.path)
        XCTAssertEqual(c.sourceURL, url)
    }

    func testShippedConfigsLoad() throws {
        let turbo = try MixDQConfig.load(repoRoot.appendingPathComponent("configs/sdxl_turbo.yaml"))
        XCTAssertEqual(turbo.model.modelID, "stabilityai/sdxl-turbo")
        XCTAssertNil(turbo.model.cacheDir)
        XCTAssertNil(turbo.model.path, "unset: the embedded default model is used")
        XCTAssertEqual(turbo.calibData.path,
                       repoRoot.appendingPathComponent("outputs/calib/sdxl_turbo_calib.h5").standardizedFileURL.path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: try turbo.captionsURL().path))
        XCTAssertTrue(turbo.quant.weight.quantizer.sym)
        XCTAssertEqual(turbo.calibData.scaleValue, 0)
        XCTAssertEqual(turbo.mixedPrecision, [2, 4, 8])

        // The trained tiny model's config: sdxl_turbo.yaml with its own calibration file and captions.
        let trained = try MixDQConfig.load(repoRoot.appendingPathComponent("configs/trained_tiny_sdxl.yaml"))
        XCTAssertEqual(trained.calibData.path,
                       repoRoot.appendingPathComponent("outputs/calib/trained_tiny_calib.h5").standardizedFileURL.path)
        XCTAssertEqual(try trained.captionsURL().standardizedFileURL.path,
                       repoRoot.appendingPathComponent("assets/shapes/calibration_captions.txt").standardizedFileURL.path)
        XCTAssertEqual(try PromptFile.load(try trained.captionsURL()).count, 64)
        XCTAssertEqual(trained.quant.weight.quantizer.sym, turbo.quant.weight.quantizer.sym)
        XCTAssertEqual(trained.calibData.nSamples, turbo.calibData.nSamples)

        let sdxl = try MixDQConfig.load(repoRoot.appendingPathComponent("configs/sdxl.yaml"))
        XCTAssertEqual(sdxl.model.modelID, "stabilityai/stable-diffusion-xl-base-1.0")
        XCTAssertEqual(sdxl.calibData.nSteps, 30)
        XCTAssertEqual(sdxl.calibData.scaleValue, 7.5)
        XCTAssertEqual(sdxl.quant.weight.quantizer.nBits, 4)
        XCTAssertFalse(sdxl.quant.weight.quantizer.sym)

        let lcm = try MixDQConfig.load(repoRoot.appendingPathComponent("configs/lcm_lora.yaml"))
        XCTAssertEqual(lcm.model.modelType, .sd)
        XCTAssertEqual(lcm.model.adapterID, "latent-consistency/lcm-lora-sdv1-5")
        // A Hub id loads (the config is readable) but using it says what to pass instead.
        XCTAssertThrowsError(try lcm.adapterURL()) { error in
            let m = error.localizedDescription
            for part in [lcm.sourceURL!.path, "model.adapter_id", "latent-consistency/lcm-lora-sdv1-5",
                         "pytorch_lora_weights.safetensors", "nothing is downloaded"] {
                XCTAssertTrue(m.contains(part), "'\(part)' missing from: \(m)")
            }
        }
        XCTAssertNil(lcm.mixedPrecision)
        XCTAssertEqual(lcm.calibData.nSteps, 4)
        XCTAssertEqual(lcm.calibData.scaleValue, 1.5)
        XCTAssertEqual(lcm.quant.weight.quantizer.nBits, 8)
        XCTAssertFalse(lcm.quant.weight.quantizer.sym)
    }

    /// `adapter_id` naming a local file or folder resolves against the config's folder and is
    /// stored absolute (so the copy ptq writes beside the checkpoint still finds it).
    func testLocalAdapterResolvesAgainstConfigFolder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-adapter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("loras"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let lora = dir.appendingPathComponent("loras/pytorch_lora_weights.safetensors")
        try Data("x".utf8).write(to: lora)
        let yaml = Self.base.replacingOccurrences(of: "model_type: 'sdxl'",
                                                  with: "model_type: 'sdxl'\n    adapter_id: loras/pytorch_lora_weights.safetensors")
        let source = dir.appendingPathComponent("config.yaml")
        let c = try MixDQConfig.parse(yaml: yaml, sourceURL: source)
        XCTAssertEqual(c.model.adapterID, lora.standardizedFileURL.path)
        XCTAssertEqual(try c.adapterURL()?.standardizedFileURL, lora.standardizedFileURL)
        // The folder works too; a relative path that does not exist is kept and refused on use.
        let folder = try MixDQConfig.parse(yaml: yaml.replacingOccurrences(of: "loras/pytorch_lora_weights.safetensors", with: "loras"),
                                           sourceURL: source)
        XCTAssertEqual(try folder.adapterURL()?.standardizedFileURL, dir.appendingPathComponent("loras").standardizedFileURL)
        let missing = try MixDQConfig.parse(yaml: yaml.replacingOccurrences(of: "loras/pytorch", with: "nowhere/pytorch"),
                                            sourceURL: source)
        XCTAssertEqual(missing.model.adapterID, "nowhere/pytorch_lora_weights.safetensors")
        XCTAssertThrowsError(try missing.adapterURL()) { error in
            XCTAssertTrue(error.localizedDescription.contains("nowhere/pytorch_lora_weights.safetensors"), error.localizedDescription)
        }
        XCTAssertNil(try parse(Self.base).adapterURL())
    }

    func testYAMLRoundTrip() throws {
        let c = try MixDQConfig.load(repoRoot.appendingPathComponent("configs/sdxl_turbo.yaml"))
        let text = try c.yamlString()
        var back = try MixDQConfig.parse(yaml: text, sourceURL: URL(fileURLWithPath: "/elsewhere/config.yaml"))
        back.sourceURL = c.sourceURL
        XCTAssertEqual(back, c, text)
        XCTAssertTrue(text.contains("model_id: stabilityai/sdxl-turbo"), text)
    }

    // MARK: Python-isms

    func testPythonIsms() throws {
        var yaml = Self.base
        yaml = yaml.replacingOccurrences(of: "model_type: 'sdxl'", with: """
        model_type: "sdxl"
            cache_dir: None
            adapter_id: ~
        """)
        yaml = yaml.replacingOccurrences(of: "n_samples: 32", with: "n_samples: 32\n    scale_type: none")
        yaml = yaml.replacingOccurrences(of: "channel_wise: True", with: "channel_wise: yes\n            sym: TRUE")
        yaml = yaml.replacingOccurrences(of: "channel_wise: False", with: """
        channel_wise: false
                    running_stat: True
                    bos_aware: False
                    softmax:
                    ema_compat_repeat: True
        """)
        yaml += "\nconditional: True\nmixed_precision: [ 2, 4 ,8 ]\nresume_with_w_quantized:\n    path: None\n"
        let c = try parse(yaml)
        XCTAssertNil(c.model.cacheDir)
        XCTAssertNil(c.model.adapterID)
        XCTAssertNil(c.calibData.scaleType)
        XCTAssertEqual(c.calibData.scaleValue, 0)
        XCTAssertTrue(c.quant.weight.quantizer.channelWise)
        XCTAssertTrue(c.quant.weight.quantizer.sym)
        XCTAssertFalse(c.quant.activation.quantizer.channelWise)
        XCTAssertTrue(c.quant.activation.quantizer.runningStat)
        XCTAssertFalse(c.quant.activation.quantizer.bosAware)
        XCTAssertTrue(c.quant.activation.quantizer.emaCompatRepeat)
        XCTAssertEqual(c.mixedPrecision, [2, 4, 8])
        XCTAssertNil(c.resumeWithWQuantized?.path)
    }

    func testNumberForms() throws {
        for (text, value) in [("0.", 0.0), ("7.5", 7.5), ("-3.", -3.0), (".5", 0.5), ("1e-1", 0.1), ("2", 2.0), ("1_000.0", 1000.0)] {
            let c = try parse(Self.base.replacingOccurrences(of: "scale_value: 0.", with: "scale_value: \(text)"))
            XCTAssertEqual(c.calibData.scaleValue, value, text)
        }
    }

    func testDefaultsWhenOptionalKeysAbsent() throws {
        let c = try parse(Self.base)
        XCTAssertTrue(c.conditional)
        XCTAssertNil(c.mixedPrecision)
        XCTAssertFalse(c.quant.weight.quantizer.sym)
        XCTAssertFalse(c.quant.activation.quantizer.runningStat)
        XCTAssertFalse(c.quant.activation.quantizer.bosAware)
        XCTAssertFalse(c.quant.activation.quantizer.emaCompatRepeat)
        XCTAssertNil(c.resumeWithWQuantized)
    }

    // MARK: Errors

    func testUnknownKeyNamesKeyAndLine() {
        let yaml = Self.base.replacingOccurrences(of: "channel_wise: True", with: "channel_wise: True\n            nbits: 4")
        assertError(yaml, contains: ["quant.weight.quantizer.nbits", "line \(line(of: "nbits", in: yaml))", "unknown key"])
        let top = Self.base + "\nextra_section:\n    a: 1\n"
        assertError(top, contains: ["'extra_section'", "line \(line(of: "extra_section", in: top))"])
    }

    func testIllTypedValueNamesKeyAndLine() {
        let yaml = Self.base.replacingOccurrences(of: "n_bits: 8\n            channel_wise: True",
                                                  with: "n_bits: eight\n            channel_wise: True")
        assertError(yaml, contains: ["quant.weight.quantizer.n_bits", "line \(line(of: "n_bits: eight", in: yaml))", "integer", "eight"])

        let quotedBool = Self.base.replacingOccurrences(of: "channel_wise: False", with: "channel_wise: \"False\"")
        assertError(quotedBool, contains: ["quant.activation.quantizer.channel_wise",
                                           "line \(line(of: "\"False\"", in: quotedBool))"])

        let list = Self.base + "\nmixed_precision: [2, four, 8]\n"
        assertError(list, contains: ["mixed_precision", "line \(line(of: "four", in: list))"])

        let mappingWanted = Self.base + "\nresume_with_w_quantized: 3\n"
        assertError(mappingWanted, contains: ["resume_with_w_quantized", "mapping", "line \(line(of: "resume_with", in: mappingWanted))"])
    }

    func testMissingAndInvalidValues() {
        let missing = Self.base.replacingOccurrences(of: "    n_steps: 1\n", with: "")
        assertError(missing, contains: ["calib_data.n_steps", "missing", "line \(line(of: "calib_data", in: missing))"])
        let nullRequired = Self.base.replacingOccurrences(of: "n_steps: 1", with: "n_steps: None")
        assertError(nullRequired, contains: ["calib_data.n_steps", "line \(line(of: "n_steps", in: nullRequired))"])
        let type = Self.base.replacingOccurrences(of: "model_type: 'sdxl'", with: "model_type: 'sdxl3'")
        assertError(type, contains: ["model.model_type", "sdxl3", "line 3"])
        let bits = Self.base.replacingOccurrences(of: "n_bits: 8\n            channel_wise: False", with: "n_bits: 12\n            channel_wise: False")
        assertError(bits, contains: ["quant.activation.quantizer.n_bits", "12"])
        let zero = Self.base.replacingOccurrences(of: "batch_size: 8", with: "batch_size: 0")
        assertError(zero, contains: ["calib_data.batch_size", "line 7"])
        let optimization = Self.base.replacingOccurrences(of: "    weight:\n", with: "    weight:\n        optimization: brecq\n")
        assertError(optimization, contains: ["quant.weight.optimization", "not supported"])
        let dup = Self.base + "\nconditional: True\nconditional: True\n"
        assertError(dup, contains: ["conditional", "duplicate"])
        assertError("model: [unclosed\n", contains: ["not valid YAML", "line"])
        assertError("", contains: ["empty"])
    }

    // MARK: Paths

    func testRelativePathsResolveAgainstConfigFolder() throws {
        var yaml = Self.base.replacingOccurrences(of: "path: \"calib.h5\"", with: """
        path: "../outputs/calib/x.h5"
            captions: data/captions.json
            height: 768
            width: 512
        """)
        yaml = yaml.replacingOccurrences(of: "model_type: 'sdxl'", with: "model_type: 'sdxl'\n    path: ./models/turbo")
        let c = try parse(yaml)
        XCTAssertEqual(c.calibData.path, "/cfgroot/outputs/calib/x.h5")
        XCTAssertEqual(c.calibData.url.path, "/cfgroot/outputs/calib/x.h5")
        XCTAssertEqual(c.calibData.captions, "/cfgroot/configs/data/captions.json")
        XCTAssertEqual(c.model.path, "/cfgroot/configs/models/turbo")
        XCTAssertEqual(c.calibData.height, 768)
        XCTAssertEqual(c.calibData.width, 512)

        let absolute = try parse(Self.base.replacingOccurrences(of: "path: \"calib.h5\"", with: "path: /data/c.h5"))
        XCTAssertEqual(absolute.calibData.path, "/data/c.h5")
        let odd = Self.base.replacingOccurrences(of: "path: \"calib.h5\"", with: "path: calib.h5\n    height: 500")
        assertError(odd, contains: ["calib_data.height", "multiple of 8"])
    }

    /// Mixed precision stores one parameter set per width at index log2(b) - 1 in the original,
    /// so only 2, 4 and 8 are candidates, each once, and the default widths must be among them.
    func testMixedPrecisionAcceptsOnlyTheOriginalsWidths() throws {
        XCTAssertEqual(try parse(Self.base + "\nmixed_precision: [2, 4, 8]\n").mixedPrecision, [2, 4, 8])
        XCTAssertEqual(try parse(Self.base + "\nmixed_precision: [4, 8]\n").mixedPrecision, [4, 8])
        for (list, mention) in [("[3]", "3"), ("[2, 3, 8]", "3"), ("[2, 4, 6, 8]", "6"), ("[1, 8]", "1"), ("[16]", "16"),
                                ("[]", "empty"), ("[2, 8, 8]", "twice"), ("[2, 4]", "quant.weight.quantizer.n_bits")] {
            let yaml = Self.base + "\nmixed_precision: \(list)\n"
            assertError(yaml, contains: ["'mixed_precision'", "line \(line(of: "mixed_precision", in: yaml))", mention])
        }
    }

    /// Sizes are bounded where they enter (GenerationLimits), and the guidance must be finite.
    func testSizesAndGuidanceAreBounded() {
        let cases: [(String, String, String)] = [
            ("batch_size: 8", "batch_size: 100000", "calib_data.batch_size"),
            ("n_steps: 1", "n_steps: 5000", "calib_data.n_steps"),
            ("n_samples: 32", "n_samples: 1000000000000", "calib_data.n_samples"),
            ("scale_value: 0.", "scale_value: 1e999", "calib_data.scale_value"),
            ("scale_value: 0.", "scale_value: -1e300", "calib_data.scale_value"),
            ("path: \"calib.h5\"", "path: calib.h5\n    height: 100000", "calib_data.height"),
            ("path: \"calib.h5\"", "path: calib.h5\n    width: 9223372036854775800", "calib_data.width"),
            ("path: \"calib.h5\"", "path: calib.h5\n    width: 0", "calib_data.width"),
            ("path: \"calib.h5\"", "path: calib.h5\n    height: -8", "calib_data.height"),
        ]
        for (from, to, key) in cases {
            let yaml = Self.base.replacingOccurrences(of: from, with: to)
            XCTAssertNotEqual(yaml, Self.base, "edit \(to) did not apply")
            assertError(yaml, contains: [key])
        }
    }

    /// calib_data.path naming a folder fails at load (before calib-data does any work), naming
    /// the key and the path.
    func testCalibrationPathThatIsAFolderIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-config-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("calib.h5"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.yaml")
        try Self.base.write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try MixDQConfig.load(url)) { error in
            let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            for part in [url.path, "'calib_data.path'", dir.appendingPathComponent("calib.h5").path, "directory"] {
                XCTAssertTrue(text.contains(part), "'\(part)' missing from: \(text)")
            }
        }
    }

    /// A config that cannot be read says why in plain words (no NSCocoaErrorDomain text).
    func testUnreadableConfigSaysWhyPlainly() throws {
        let missing = configFixtures.appendingPathComponent("does_not_exist.yaml")
        XCTAssertThrowsError(try MixDQConfig.load(missing)) { error in
            let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            XCTAssertTrue(text.contains(missing.path) && text.lowercased().contains("no such file"), text)
            XCTAssertFalse(text.contains("NSCocoaErrorDomain") || text.contains("The operation could not be completed"), text)
        }
        XCTAssertThrowsError(try MixDQConfig.load(configFixtures)) { error in   // a folder
            let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            XCTAssertTrue(text.contains(configFixtures.path), text)
            XCTAssertFalse(text.contains("NSCocoaErrorDomain") || text.contains("The operation could not be completed"), text)
        }
    }

    func testLoadErrorsNameFile() {
        let missing = configFixtures.appendingPathComponent("does_not_exist.yaml")
        XCTAssertThrowsError(try MixDQConfig.load(missing)) { error in
            XCTAssertTrue("\(error)".contains(missing.path), "\(error)")
        }
    }
}
