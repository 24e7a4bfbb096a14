import Foundation
import XCTest

/// `--model` takes a pipeline folder holding the component (`<dir>/unet/`) or the component's own
/// folder, whatever it is called, as long as its config.json is of that component's kind; a folder
/// of another kind is named with what it holds. Issue 7, point 4.
final class ComponentFolderCLITests: XCTestCase {
    struct Component {
        let command: String
        let fixture: String
        let folder: String
        let input: String
    }

    static let components = [
        Component(command: "unet", fixture: "unet_sdxl_tiny", folder: "unet", input: "io_b1.safetensors"),
        Component(command: "text-encoder", fixture: "clip_tiny", folder: "text_encoder", input: "io_te1.safetensors"),
        Component(command: "text-encoder-2", fixture: "clip_tiny", folder: "text_encoder_2", input: "io_te2.safetensors"),
        Component(command: "vae-decoder", fixture: "vae_tiny", folder: "vae", input: "io.safetensors"),
    ]

    func testEveryForwardComponentAcceptsPipelineOrComponentFolder() throws {
        let dir = try MixDQCLI.tempDir("component-folders")
        for c in Self.components {
            let pipeline = MixDQCLI.fixtures.appendingPathComponent(c.fixture)
            let own = pipeline.appendingPathComponent(c.folder)
            var forms = [("pipeline", pipeline), ("component", own)]
            if c.command == "unet" {
                // The component folder under a name that says nothing about what it is.
                let renamed = dir.appendingPathComponent("checkpoint-\(c.command)")
                try MixDQCLI.copy(own, to: renamed)
                forms.append(("renamed", renamed))
            }
            let input = pipeline.appendingPathComponent(c.input).path
            var outputs: [Data] = []
            for (label, model) in forms {
                let out = dir.appendingPathComponent("\(c.command)-\(label).safetensors")
                try MixDQCLI.succeed(["forward", c.command, "--model", model.path, "--input", input, "--output", out.path])
                outputs.append(try XCTUnwrap(MixDQCLI.bytes(out), "\(c.command) \(label): no output"))
            }
            // The same model whichever way it was named.
            for (i, (label, _)) in forms.enumerated().dropFirst() {
                XCTAssertEqual(outputs[i], outputs[0], "\(c.command): \(label) folder vs pipeline folder")
            }
            if c.command == "unet" {
                // Run from inside the folder: `--model .` (its path names no component at all).
                let out = dir.appendingPathComponent("unet-dot.safetensors")
                let r = try MixDQCLI.run(["forward", "unet", "--model", ".", "--input", input, "--output", out.path], cwd: own)
                XCTAssertEqual(r.status, 0, "\(r)")
                XCTAssertEqual(MixDQCLI.bytes(out), outputs[0], "unet: --model . vs pipeline folder")
            }
        }
    }

    func testFolderOfAnotherComponentIsNamedWithWhatItHolds() throws {
        let dir = try MixDQCLI.tempDir("wrong-component")
        let vae = MixDQCLI.fixtures.appendingPathComponent("vae_tiny/vae")
        let te1 = MixDQCLI.fixtures.appendingPathComponent("clip_tiny/text_encoder")
        let unet = MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny/unet")
        let unetInput = MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny/io_b1.safetensors").path
        let teInput = MixDQCLI.fixtures.appendingPathComponent("clip_tiny/io_te2.safetensors").path
        let cases: [([String], [String])] = [
            (["unet", "--model", vae.path, "--input", unetInput], [vae.path, "AutoencoderKL", "'unet'"]),
            (["text-encoder-2", "--model", te1.path, "--input", teInput], [te1.path, "CLIPTextModel", "'text_encoder_2'"]),
            (["vae-decoder", "--model", unet.path, "--input", unetInput], [unet.path, "UNet2DConditionModel", "'vae'"]),
        ]
        for (i, (args, mentions)) in cases.enumerated() {
            let out = dir.appendingPathComponent("out-\(i).safetensors")
            try MixDQCLI.fail(["forward"] + args + ["--output", out.path], mentioning: mentions)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        }
        // A folder with neither the component nor a config.json.
        let empty = try MixDQCLI.tempDir("no-component")
        try MixDQCLI.fail(["forward", "unet", "--model", empty.path, "--input", unetInput,
                           "--output", dir.appendingPathComponent("o.safetensors").path],
                          mentioning: [empty.path, "'unet'"])
    }

    /// Commands that need only the UNet take its folder as --model too.
    func testBenchTakesTheUNetFolderItself() throws {
        let unet = MixDQCLI.fixtures.appendingPathComponent("unet_sdxl_tiny/unet")
        try MixDQCLI.succeed(["bench", "unet", "--model", unet.path, "--height", "64", "--width", "64", "--runs", "1", "--warmup", "0"])
    }
}
