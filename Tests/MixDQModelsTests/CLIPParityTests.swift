import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels

/// fp32 parity of the CLIP text encoders against transformers (fixtures: scripts/reference/make_clip_fixtures.py).
final class CLIPParityTests: XCTestCase {
    let dir = fixturesURL.appendingPathComponent("clip_tiny")

    func load(_ component: String, config edit: (inout CLIPTextConfig) -> Void = { _ in }) throws -> CLIPTextModel {
        let folder = dir.appendingPathComponent(component)
        var config = try CLIPTextConfig.load(folder.appendingPathComponent("config.json"))
        edit(&config)
        let weights = try SafetensorsWeightSource.open(folder: folder, ignoredKeyPatterns: CLIPTextModel.ignoredKeyPatterns)
        return try CLIPTextModel(config: config, weights: weights)
    }

    func io(_ name: String) throws -> (SafetensorsFile, [[Int32]]) {
        let file = try SafetensorsFile(dir.appendingPathComponent(name))
        let (dtype, shape) = try file.info("input_ids")
        XCTAssertEqual(dtype, .i64)
        return (file, try CLIPTextModel.inputIDs(int64: try file.rawBytes("input_ids"), shape: shape))
    }

    func runParity(_ component: String, io name: String, pooledKey: String) throws {
        let model = try load(component)
        let (io, ids) = try io(name)
        let r = try model.encode(ids: ids, allHiddenStates: true)
        XCTAssertEqual(r.hiddenStates.count, model.config.numHiddenLayers + 1)
        for (i, h) in r.hiddenStates.enumerated() {
            assertClose("\(component) hidden_states.\(i)", h, try io.floatTensor("hidden_states.\(i)"), relTol: 1e-4)
        }
        assertClose("\(component) hidden_states[-2]", r.hiddenState,
                    try io.floatTensor("hidden_states.\(model.config.numHiddenLayers - 1)"), relTol: 1e-4)
        assertClose("\(component) last_hidden_state", r.lastHiddenState!, try io.floatTensor("last_hidden_state"), relTol: 1e-4)
        let pooled = pooledKey == "text_embeds" ? r.textEmbeds! : r.pooled!
        assertClose("\(component) \(pooledKey)", pooled, try io.floatTensor(pooledKey), relTol: 1e-4)
    }

    func testTextEncoderMatchesTransformers() throws {
        try runParity("text_encoder", io: "io_te1.safetensors", pooledKey: "pooler_output")
    }

    func testTextEncoder2MatchesTransformers() throws {
        try runParity("text_encoder_2", io: "io_te2.safetensors", pooledKey: "text_embeds")
    }

    /// SDXL's TE1 use: only hidden_states[-2], last layer skipped; must equal the full run's value.
    func testPenultimateOnlySkipsLastLayer() throws {
        let model = try load("text_encoder")
        let (io, ids) = try io("io_te1.safetensors")
        let r = try model.encode(ids: ids, includeLastHiddenState: false)
        XCTAssertNil(r.lastHiddenState)
        XCTAssertNil(r.pooled)
        assertClose("text_encoder penultimate-only", r.hiddenState, try io.floatTensor("hidden_states.2"), relTol: 1e-4)
        let first = try model.encode(ids: ids, hiddenStateIndex: 0, includeLastHiddenState: false)
        assertClose("text_encoder hidden_states[0]", first.hiddenState, try io.floatTensor("hidden_states.0"), relTol: 1e-6)
        XCTAssertThrowsError(try model.encode(ids: ids, hiddenStateIndex: -5))
    }

    /// Non-legacy pooling (eos_token_id != 2): first position holding the EOS id, not the largest id.
    func testNonLegacyEOSPooling() throws {
        let model = try load("text_encoder") { $0.eosTokenId = 500 }
        let (io, ids) = try io("io_te1.safetensors")
        XCTAssertEqual(CLIPTextModel.eosPositions(ids: ids, eosTokenId: 2), [8, 13])   // first 999 in each row
        XCTAssertEqual(CLIPTextModel.eosPositions(ids: ids, eosTokenId: 500), [4, 6])
        XCTAssertEqual(CLIPTextModel.eosPositions(ids: [[5, 7, 7, 1]], eosTokenId: 2), [1])
        XCTAssertEqual(CLIPTextModel.eosPositions(ids: [[5, 7, 7, 1]], eosTokenId: 9), [0])  // none: argmax of zeros
        let r = try model.encode(ids: ids)
        assertClose("text_encoder pooler_output eos=500", r.pooled!, try io.floatTensor("pooler_output_eos500"), relTol: 1e-4)
    }

    func testBF16SQNR() throws {
        guard Precision.bf16.isAvailable else { throw XCTSkip("no oneDNN bf16 on this CPU (\(CPUInfo.current.summary))") }
        let model = try load("text_encoder_2")
        try model.registry.usePrecision(.bf16)
        let (io, ids) = try io("io_te2.safetensors")
        let r = try model.encode(ids: ids)
        for (name, got) in [("hidden_states.2", r.hiddenState), ("text_embeds", r.textEmbeds!)] {
            let want = try io.floatTensor(name)
            var signal = 0.0, noise = 0.0
            for i in 0..<want.count {
                signal += Double(want.data[i] * want.data[i])
                noise += Double((got.data[i] - want.data[i]) * (got.data[i] - want.data[i]))
            }
            let sqnr = 10 * log10(signal / max(noise, 1e-30))
            print(String(format: "bf16 text_encoder_2 %@ SQNR %.1f dB", name, sqnr))
            XCTAssertGreaterThanOrEqual(sqnr, 25, name)
        }
    }

    /// Every Linear registered under its transformers path: 6 per layer plus text_projection.
    func testLayerRegistry() throws {
        let te2 = try load("text_encoder_2")
        let paths = te2.registry.paths
        XCTAssertEqual(paths.count, 3 * 6 + 1)
        XCTAssertEqual(Array(paths.prefix(6)), ["k_proj", "v_proj", "q_proj", "out_proj"].map {
            "text_model.encoder.layers.0.self_attn.\($0)" } + ["text_model.encoder.layers.0.mlp.fc1",
                                                               "text_model.encoder.layers.0.mlp.fc2"])
        XCTAssertEqual(paths.last, "text_projection")
        XCTAssertTrue(te2.registry.layers.allSatisfy { $0.role == .plain })
        let te1 = try load("text_encoder")
        XCTAssertEqual(te1.registry.paths.count, 3 * 6)
        XCTAssertNil(te1.textProjection)
    }

    /// transformers 5 saves a CLIPTextModel without the `text_model.` prefix; that layout loads too.
    func testUnprefixedKeysLoad() throws {
        let folder = dir.appendingPathComponent("text_encoder")
        let inner = try SafetensorsWeightSource.open(folder: folder, ignoredKeyPatterns: CLIPTextModel.ignoredKeyPatterns)
        let model = try CLIPTextModel(config: try CLIPTextConfig.load(folder.appendingPathComponent("config.json")),
                                      weights: StrippedPrefixSource(inner, prefix: "text_model."))
        XCTAssertEqual(model.registry.paths.first, "encoder.layers.0.self_attn.k_proj")
        let (io, ids) = try io("io_te1.safetensors")
        assertClose("text_encoder unprefixed last_hidden_state", try model.encode(ids: ids).lastHiddenState!,
                    try io.floatTensor("last_hidden_state"), relTol: 1e-4)
    }

    /// The forward command's outputs, written and read back the way `mixdq forward text-encoder-2` does,
    /// with ids stored as float32 (the other forward inputs' dtype) as well as int64.
    func testForwardOutputsRoundTrip() throws {
        let model = try load("text_encoder_2")
        let (io, ids) = try io("io_te2.safetensors")
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("clip-forward-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }

        let asFloat = Tensor(shape: [ids.count, ids[0].count], values: ids.flatMap { $0.map(Float.init) })
        try SafetensorsWriter.write([("input_ids", asFloat)], to: tmp.appendingPathComponent("in.safetensors"))
        let back = try SafetensorsFile(tmp.appendingPathComponent("in.safetensors"))
        XCTAssertEqual(try CLIPTextModel.inputIDs(float: try back.floatTensor("input_ids")), ids)

        let outputs = try model.forwardOutputs(ids: ids)
        XCTAssertEqual(outputs.map(\.0), ["out", "last_hidden_state", "text_embeds"])
        try SafetensorsWriter.write(outputs, to: tmp.appendingPathComponent("out.safetensors"))
        let written = try SafetensorsFile(tmp.appendingPathComponent("out.safetensors"))
        assertClose("forward out", try written.floatTensor("out"), try io.floatTensor("hidden_states.2"), relTol: 1e-4)
        assertClose("forward text_embeds", try written.floatTensor("text_embeds"), try io.floatTensor("text_embeds"), relTol: 1e-4)

        let te1 = try load("text_encoder")
        XCTAssertEqual(try te1.forwardOutputs(ids: ids).map(\.0), ["out", "last_hidden_state", "pooler_output"])
        XCTAssertThrowsError(try CLIPTextModel.inputIDs(float: Tensor(shape: [1, 2], values: [3, 4.5])))
        XCTAssertThrowsError(try model.encode(ids: [[1, 2], [3]]))
        XCTAssertThrowsError(try model.encode(ids: [[1, 1000]]))
    }

    // MARK: config errors name the file and the key

    func configError(_ edit: (inout [String: Any]) -> Void) throws -> String {
        let src = dir.appendingPathComponent("text_encoder_2/config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: src)) as! [String: Any]
        edit(&json)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("clip-config-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            _ = try CLIPTextConfig.load(url)
        } catch let e as ModelConfigError {
            XCTAssertEqual(e.file, url.path)
            XCTAssertTrue(e.description.contains(url.path))
            return e.description
        }
        XCTFail("config was accepted")
        return ""
    }

    func testConfigErrorsNameFileAndKey() throws {
        let cfg = try CLIPTextConfig.load(dir.appendingPathComponent("text_encoder_2/config.json"))
        XCTAssertTrue(cfg.withProjection)
        XCTAssertEqual(cfg.hiddenAct, .gelu)
        XCTAssertEqual(cfg.projectionDim, 40)

        var m = try configError { $0["hidden_size"] = nil }
        XCTAssertTrue(m.contains("'hidden_size'"), m)
        m = try configError { $0["hidden_act"] = "relu" }
        XCTAssertTrue(m.contains("'hidden_act'") && m.contains("relu"), m)
        m = try configError { $0["eos_token_id"] = nil }
        XCTAssertTrue(m.contains("'eos_token_id'"), m)
        m = try configError { $0["projection_dim"] = nil }
        XCTAssertTrue(m.contains("'projection_dim'"), m)
        m = try configError { $0["architectures"] = ["CLIPVisionModel"] }
        XCTAssertTrue(m.contains("'architectures'"), m)
        m = try configError { $0["num_attention_heads"] = 5 }
        XCTAssertTrue(m.contains("'num_attention_heads'"), m)
        m = try configError { json in
            let text = json
            json = ["model_type": "clip", "text_config": text, "architectures": ["CLIPModel"]]
        }
        XCTAssertTrue(m.contains("'text_config'"), m)
        print("config error example: \(m)")
        // A folder given where the config file belongs: said so, not an opaque read error.
        let folder = dir.appendingPathComponent("text_encoder_2")
        XCTAssertThrowsError(try CLIPTextConfig.load(folder)) { error in
            XCTAssertEqual("\(error)", "\(folder.path): is a folder, not a config file (give the config.json inside it)")
        }
    }
}

/// Presents `inner`'s keys without `prefix` (the transformers 5 CLIPTextModel file layout).
final class StrippedPrefixSource: WeightSource {
    let inner: WeightSource, prefix: String
    init(_ inner: WeightSource, prefix: String) { self.inner = inner; self.prefix = prefix }
    func tensor(_ key: String, shape: [Int]) throws -> Tensor { try inner.tensor(prefix + key, shape: shape) }
    func contains(_ key: String) -> Bool { !key.hasPrefix(prefix) && inner.contains(prefix + key) }
    func finish() throws { try inner.finish() }
}
