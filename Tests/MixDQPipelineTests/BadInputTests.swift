import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQPipeline

/// Bad input at the library level: each error names the path (and key or tensor) at fault
/// (issues "Text-to-image" 11, "Foundation" 8).
final class BadInputTests: XCTestCase {
    typealias Env = MixDQPipelineTestEnv

    /// Asserts that `body` throws and that the error's text holds every string of `mentions`.
    func assertError<T>(_ body: @autoclosure () throws -> T, mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            let text = "\(error)"
            for m in mentions { XCTAssertTrue(text.contains(m), "the error should mention '\(m)': \(text)", file: file, line: line) }
            // What the CLI prints (LocalizedError) says the same.
            let localized = (error as? LocalizedError)?.errorDescription ?? text
            for m in mentions { XCTAssertTrue(localized.contains(m), "errorDescription should mention '\(m)': \(localized)", file: file, line: line) }
        }
    }

    func testMissingComponentFolderIsNamed() throws {
        let empty = try Env.tempDir("empty-model")
        assertError(try TextToImagePipeline(folder: ModelFolder(empty)), mentions: [empty.path, "unet"])
        for component in ["unet", "vae", "text_encoder", "text_encoder_2"] {
            let model = try Env.modelCopy("no-\(component)")
            try FileManager.default.removeItem(at: model.appendingPathComponent(component))
            assertError(try TextToImagePipeline(folder: ModelFolder(model)), mentions: [model.path, "'\(component)'"])
        }
        for component in ["tokenizer", "tokenizer_2"] {
            let model = try Env.modelCopy("no-\(component)")
            try FileManager.default.removeItem(at: model.appendingPathComponent(component))
            let pipeline = try TextToImagePipeline(folder: ModelFolder(model))
            assertError(try pipeline.encode(["a cat"]), mentions: [model.path, "'\(component)'"])
        }
        let model = try Env.modelCopy("no-scheduler")
        try FileManager.default.removeItem(at: model.appendingPathComponent("scheduler"))
        let pipeline = try TextToImagePipeline(folder: ModelFolder(model))
        assertError(try pipeline.scheduler(steps: 1), mentions: [model.path, "scheduler"])
    }

    func testMissingOrDamagedFilesAreNamed() throws {
        let model = try Env.modelCopy("files")
        let folder = ModelFolder(model)
        let unetWeights = model.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        let saved = try Data(contentsOf: unetWeights)
        try FileManager.default.removeItem(at: unetWeights)
        assertError(try folder.loadUNet(), mentions: [model.appendingPathComponent("unet").path])
        try Data(saved.prefix(4000)).write(to: unetWeights)
        assertError(try folder.loadUNet(), mentions: [unetWeights.path])
        try Data("not safetensors at all".utf8).write(to: unetWeights)
        assertError(try folder.loadUNet(), mentions: [unetWeights.path])
        try saved.write(to: unetWeights)

        let vaeWeights = model.appendingPathComponent("vae/diffusion_pytorch_model.safetensors")
        try FileManager.default.removeItem(at: vaeWeights)
        assertError(try folder.loadVAEDecoder(), mentions: [model.appendingPathComponent("vae").path])

        let scheduler = model.appendingPathComponent("scheduler/scheduler_config.json")
        try FileManager.default.removeItem(at: scheduler)
        assertError(try TextToImagePipeline(folder: folder).scheduler(steps: 1), mentions: [scheduler.path])
        try "{ nope".write(to: scheduler, atomically: true, encoding: .utf8)
        assertError(try TextToImagePipeline(folder: folder).scheduler(steps: 1), mentions: [scheduler.path])
    }

    func testTokenizerFilesThatDoNotParseAreNamed() throws {
        let cases: [(String, String, String)] = [
            ("tokenizer", "vocab.json", "not json {"),
            ("tokenizer", "vocab.json", "[1, 2, 3]"),
            ("tokenizer_2", "tokenizer_config.json", "{ broken"),
            ("tokenizer", "merges.txt", "#version: 0.2\na b c\n"),
            ("tokenizer_2", "special_tokens_map.json", "garbage"),
        ]
        for (i, (component, file, content)) in cases.enumerated() {
            let model = try Env.modelCopy("tok-\(i)")
            let url = model.appendingPathComponent(component).appendingPathComponent(file)
            try content.write(to: url, atomically: true, encoding: .utf8)
            let pipeline = try TextToImagePipeline(folder: ModelFolder(model))
            assertError(try pipeline.encode(["a cat"]), mentions: [url.path])
        }
        let model = try Env.modelCopy("tok-missing")
        let vocab = model.appendingPathComponent("tokenizer/vocab.json")
        try FileManager.default.removeItem(at: vocab)
        assertError(try TextToImagePipeline(folder: ModelFolder(model)).encode(["a cat"]), mentions: [vocab.path])
    }

    func testCaptionsThatAreNotCOCOAreNamed() throws {
        let dir = try Env.tempDir("captions")
        let coco = Env.fixtures.appendingPathComponent("coco")
        let list = dir.appendingPathComponent("list.json")
        try #"["a cat", "a dog"]"#.write(to: list, atomically: true, encoding: .utf8)
        let noCaption = dir.appendingPathComponent("no-caption.json")
        try #"{"annotations": [{"image_id": 1, "id": 1, "text": "a cat"}]}"#.write(to: noCaption, atomically: true, encoding: .utf8)
        let cases: [(URL, String)] = [
            (coco.appendingPathComponent("no_annotations.json"), "annotations"),
            (coco.appendingPathComponent("not_json.json"), "JSON"),
            (coco.appendingPathComponent("captions_missing_caption.json"), "caption"),
            (list, "object"),
            (noCaption, "caption"),
            (dir.appendingPathComponent("absent.json"), "cannot read"),
        ]
        for (url, what) in cases { assertError(try COCOCaptions.load(url), mentions: [url.path, what]) }
        // The shipped captions are COCO format.
        XCTAssertGreaterThanOrEqual(try COCOCaptions.load(Env.packageRoot.appendingPathComponent("assets/coco/captions_mixdq_default.json")).count, 32)
    }

    func testUnwritableOutputFolderIsNamed() throws {
        let dir = try Env.tempDir("unwritable")
        // A regular file where a folder is needed: not writable, even for root.
        let blocker = dir.appendingPathComponent("a-file")
        try "x".write(to: blocker, atomically: true, encoding: .utf8)
        let under = blocker.appendingPathComponent("out")
        assertError(try RunLog(under.appendingPathComponent("run.log")), mentions: [under.path])

        let folder = ModelFolder(try Env.model())
        let pipeline = try TextToImagePipeline(folder: folder)
        let log = try RunLog(dir.appendingPathComponent("run.log"))
        let job = ImageGenerationJob(prompts: ["a cat"], seed: 42, batchSize: 1, steps: 1, guidance: 0, height: 128, width: 128,
                                     folder: under.appendingPathComponent("images"))
        assertError(try job.run(pipeline, log: log), mentions: [under.appendingPathComponent("images").path])

        let calib = under.appendingPathComponent("calib.h5")
        let generator = CalibrationDataGenerator(prompts: ["a cat"], batchSize: 1, steps: 1, guidance: 0, height: 128, width: 128,
                                                 seed: 42, output: calib, imageFolder: nil)
        assertError(try generator.run(pipeline, log: log), mentions: [under.path])

        let image = RGBImage.fromDecoded(Tensor(zeros: [1, 3, 8, 8]), index: 0)
        assertError(try image.writePNG(to: under.appendingPathComponent("0.png")), mentions: [under.appendingPathComponent("0.png").path])
        assertError(try DefaultModel.write(to: under.appendingPathComponent("model")), mentions: [under.path])
    }

    /// A copy of the tiny SDXL UNet fixture's config.json, edited.
    func editedUNetConfig(_ label: String, _ edit: (inout [String: Any]) -> Void) throws -> URL {
        let src = Env.fixtures.appendingPathComponent("unet_sdxl_tiny/unet/config.json")
        guard var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: src)) as? [String: Any] else {
            throw Env.Failure(description: "\(src.path): not an object")
        }
        edit(&obj)
        let url = try Env.tempDir(label).appendingPathComponent("config.json")
        try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]).write(to: url)
        return url
    }

    func testModelConfigWithMissingKeyOrUnknownBlockNamesFileAndKey() throws {
        XCTAssertNoThrow(try UNetConfig.load(try editedUNetConfig("unet-ok") { _ in }))
        let cases: [(String, (inout [String: Any]) -> Void, [String])] = [
            ("in_channels", { $0.removeValue(forKey: "in_channels") }, ["'in_channels'", "missing"]),
            ("block_out_channels", { $0.removeValue(forKey: "block_out_channels") }, ["'block_out_channels'"]),
            ("down", { c in var t = c["down_block_types"] as! [String]; t[0] = "AttnDownBlock2D"; c["down_block_types"] = t },
             ["down_block_types", "AttnDownBlock2D"]),
            ("up", { c in var t = c["up_block_types"] as! [String]; t[2] = "AttnUpBlock2D"; c["up_block_types"] = t },
             ["up_block_types", "AttnUpBlock2D"]),
            ("mid", { $0["mid_block_type"] = "UNetMidBlock2D" }, ["mid_block_type", "UNetMidBlock2D"]),
            ("type", { $0["norm_num_groups"] = "thirty-two" }, ["norm_num_groups"]),
        ]
        for (label, edit, mentions) in cases {
            let url = try editedUNetConfig("unet-\(label)", edit)
            assertError(try UNetConfig.load(url), mentions: [url.path] + mentions)
        }
        // The other components' configs, from the default model.
        let model = try Env.model()
        for (component, key, load) in [("text_encoder", "hidden_size", { (u: URL) throws in _ = try CLIPTextConfig.load(u) }),
                                       ("text_encoder_2", "num_hidden_layers", { (u: URL) throws in _ = try CLIPTextConfig.load(u) }),
                                       ("vae", "latent_channels", { (u: URL) throws in _ = try VAEConfig.load(u) })] as
                [(String, String, (URL) throws -> Void)] {
            let src = model.appendingPathComponent(component).appendingPathComponent("config.json")
            guard var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: src)) as? [String: Any] else { continue }
            XCTAssertNoThrow(try load(src))
            obj.removeValue(forKey: key)
            let url = try Env.tempDir(component).appendingPathComponent("config.json")
            try JSONSerialization.data(withJSONObject: obj).write(to: url)
            assertError(try load(url), mentions: [url.path, key])
        }
    }

    func testUNetInputsOfTheWrongShapeNameTheTensor() throws {
        let unet = try ModelFolder(try Env.model()).loadUNet()
        func inputs(sample: [Int] = [1, 4, 16, 16], context: [Int] = [1, 77, 80], text: [Int]? = [1, 40], ids: [Int]? = [1, 6],
                    timesteps: [Float] = [999]) -> UNetInputs {
            UNetInputs(sample: Tensor(zeros: sample), timesteps: timesteps, encoderHiddenStates: Tensor(zeros: context),
                       textEmbeds: text.map { Tensor(zeros: $0) }, timeIds: ids.map { Tensor(zeros: $0) })
        }
        XCTAssertNoThrow(try unet(inputs()))
        assertError(try unet(inputs(sample: [1, 3, 16, 16])), mentions: ["'sample'", "[1, 3, 16, 16]"])
        assertError(try unet(inputs(sample: [4, 16, 16])), mentions: ["'sample'"])
        assertError(try unet(inputs(context: [1, 77, 64])), mentions: ["'encoder_hidden_states'", "[1, 77, 64]"])
        assertError(try unet(inputs(context: [2, 77, 80])), mentions: ["'encoder_hidden_states'"])
        assertError(try unet(inputs(text: [1, 41])), mentions: ["'text_embeds'", "[1, 41]"])
        assertError(try unet(inputs(text: nil)), mentions: ["'text_embeds'"])
        assertError(try unet(inputs(ids: [1, 5])), mentions: ["'time_ids'", "[1, 5]"])
        assertError(try unet(inputs(timesteps: [999, 1, 2])), mentions: ["'timestep'"])
    }

    func testCalibrationFileThatCannotBeReadIsNamed() throws {
        let dir = try Env.tempDir("bad-calib")
        let absent = dir.appendingPathComponent("absent.h5")
        assertError(try CalibrationData.load(absent), mentions: [absent.path])
        let text = dir.appendingPathComponent("text.h5")
        try "not hdf5".write(to: text, atomically: true, encoding: .utf8)
        assertError(try CalibrationData.load(text), mentions: [text.path])
        let partial = dir.appendingPathComponent("partial.h5")
        let f = try HDF5File.create(partial)
        try f.write("ts", shape: [1, 2], values: [999, 999])
        try f.close()
        assertError(try CalibrationData.load(partial), mentions: [partial.path, "xs"])
    }
}
