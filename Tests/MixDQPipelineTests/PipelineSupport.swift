import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQPipeline

/// Helpers for the pipeline parity tests (fixtures: scripts/reference/make_pipeline_fixtures.py).
/// Everything lives in this namespace so that other files of the test target can define their own helpers.
enum PipelineFixtures {
    /// `Tests/Fixtures/pipeline_tiny`.
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("pipeline_tiny")

    static let regenerate = "swift build -c release --product mixdq && .venv-reference/bin/python "
        + "scripts/reference/make_pipeline_fixtures.py --mixdq .build/release/mixdq "
        + "(see scripts/reference/README.md)"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `model.json`: what the fixtures were generated from.
    struct Manifest {
        struct Case {
            let name: String, prompts: [String], steps: Int, guidance: Float
        }
        let version: String?
        /// weights file (relative to the model folder) -> sha256
        let sha256: [String: String]
        let seed: UInt64
        let prompts: [String]
        let cases: [Case]

        /// `url`: a model.json of the same layout (default: pipeline_tiny's); `prompts` may be absent.
        static func load(_ url: URL = PipelineFixtures.dir.appendingPathComponent("model.json")) throws -> Manifest {
            guard let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
                  let weights = obj["weights"] as? [String: [String: Any]],
                  let seed = obj["seed"] as? Int, let cases = obj["cases"] as? [[String: Any]] else {
                throw Failure(description: "\(url.path): unexpected layout")
            }
            var hashes: [String: String] = [:]
            for (k, v) in weights { hashes[k] = v["sha256"] as? String }
            let parsed = try cases.map { c -> Case in
                guard let name = c["name"] as? String, let p = c["prompts"] as? [String], let s = c["steps"] as? Int,
                      let g = (c["guidance"] as? NSNumber)?.floatValue else {
                    throw Failure(description: "\(url.path): bad case \(c)")
                }
                return Case(name: name, prompts: p, steps: s, guidance: g)
            }
            return Manifest(version: obj["default_model_version"] as? String, sha256: hashes, seed: UInt64(seed),
                            prompts: obj["prompts"] as? [String] ?? [], cases: parsed)
        }
    }

    /// sha256 of a file through coreutils' `sha256sum` (macOS: `shasum -a 256`); Foundation on Linux has no CryptoKit.
    static func sha256(of url: URL) throws -> String {
        let fm = FileManager.default
        let (tool, args): (String, [String])
        if let p = ["/usr/bin/sha256sum", "/bin/sha256sum"].first(where: { fm.isExecutableFile(atPath: $0) }) {
            (tool, args) = (p, [url.path])
        } else if fm.isExecutableFile(atPath: "/usr/bin/shasum") {
            (tool, args) = ("/usr/bin/shasum", ["-a", "256", url.path])
        } else {
            throw Failure(description: "neither sha256sum nor shasum found")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = args
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let hex = String(decoding: out, as: UTF8.self).split(separator: " ").first, hex.count == 64 else {
            throw Failure(description: "\(tool) \(url.path) failed (status \(process.terminationStatus))")
        }
        return String(hex).lowercased()
    }

    /// The recomputed hashes of `model`'s weights files against model.json; nil when they all match, else a message.
    static func hashMismatch(model: URL, manifest: Manifest) throws -> String? {
        var bad: [String] = []
        for (rel, want) in manifest.sha256.sorted(by: { $0.key < $1.key }) {
            let url = model.appendingPathComponent(rel)
            guard FileManager.default.fileExists(atPath: url.path) else { bad.append("\(rel): missing"); continue }
            let got = try sha256(of: url)
            if got != want { bad.append("\(rel): sha256 \(got), fixtures were made from \(want)") }
        }
        if bad.isEmpty { return nil }
        return "the embedded default model changed; regenerate fixtures with \(regenerate). "
            + "Differences: " + bad.joined(separator: "; ")
    }

    /// An I64 (or I32) tensor of a safetensors file as Int32 values.
    static func intValues(_ file: SafetensorsFile, _ key: String) throws -> [Int32] {
        let info = try file.info(key)
        let raw = try file.rawBytes(key)
        let n = info.shape.reduce(1, *)
        switch info.dtype.rawValue {
        case "I64": return (0..<n).map { Int32(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        case "I32": return (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
        default: throw Failure(description: "\(file.path): \(key) is \(info.dtype.rawValue), expected I64")
        }
    }

    /// Max-abs and max-relative error (max |a-b| / max |b|), printed and checked.
    @discardableResult
    static func assertClose(_ name: String, _ got: Tensor, _ want: Tensor, relTol: Float,
                            file: StaticString = #filePath, line: UInt = #line) -> (maxAbs: Float, rel: Float) {
        XCTAssertEqual(got.shape, want.shape, "\(name): shape", file: file, line: line)
        guard got.shape == want.shape else { return (.infinity, .infinity) }
        var maxAbs: Float = 0, refMax: Float = 0
        for i in 0..<got.count {
            let d = abs(got.data[i] - want.data[i])
            if !(d <= maxAbs) { maxAbs = d.isNaN ? .infinity : max(maxAbs, d) }
            refMax = max(refMax, abs(want.data[i]))
        }
        let rel = maxAbs / max(refMax, 1e-30)
        print(String(format: "parity %-34@ max-abs %.3e  rel %.3e  (max|ref| %.3e)", name as NSString, maxAbs, rel, refMax))
        XCTAssertLessThanOrEqual(rel, relTol, "\(name): relative error \(rel) > \(relTol)", file: file, line: line)
        return (maxAbs, rel)
    }

    /// Peak signal-to-noise ratio of two 8-bit images in dB (infinity when identical).
    static func psnr(_ a: RGBImage, _ b: RGBImage) -> Double {
        precondition(a.width == b.width && a.height == b.height)
        var se = 0.0
        for i in a.pixels.indices {
            let d = Double(a.pixels[i]) - Double(b.pixels[i])
            se += d * d
        }
        if se == 0 { return .infinity }
        return 10 * log10(255 * 255 / (se / Double(a.pixels.count)))
    }

    /// Largest per-channel difference of two 8-bit images.
    static func maxPixelDiff(_ a: RGBImage, _ b: RGBImage) -> Int {
        zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    /// The scheduler's timesteps (exactly) and the initial latents (bit for bit: the same torch draws) of a case.
    static func assertScheduleAndInitialLatents(_ name: String, _ pipeline: TextToImagePipeline, _ io: SafetensorsFile,
                                                steps: Int, seeds: [UInt64], size: Int,
                                                file: StaticString = #filePath, line: UInt = #line) throws {
        let scheduler = try pipeline.scheduler(steps: steps)
        XCTAssertEqual(scheduler.timesteps, try io.floatTensor("timesteps").scalars, "\(name): timesteps", file: file, line: line)
        var probe = BatchNoise(seeds: seeds)
        let initial = Ops.scale(probe.randn([seeds.count, 4, size / 8, size / 8]), by: scheduler.initNoiseSigma)
        let (initAbs, _) = assertClose("\(name) init_latents", initial, try io.floatTensor("init_latents"), relTol: 0, file: file, line: line)
        XCTAssertEqual(initAbs, 0, "\(name): initial latents must equal torch's randn bit for bit", file: file, line: line)
    }

    /// Encodes a case's prompts (text encoders released after), checks the schedule and initial latents, and
    /// denoises with image b on seed `seeds[b]`: the final latents and every step's UNet record.
    static func denoiseRecorded(_ name: String, _ pipeline: TextToImagePipeline, _ io: SafetensorsFile, prompts: [String],
                                steps: Int, guidance: Float, seeds: [UInt64], size: Int,
                                file: StaticString = #filePath, line: UInt = #line) throws -> (Tensor, [UNetStepRecord]) {
        let emb = try pipeline.encode(prompts)
        pipeline.releaseTextEncoders()
        try assertScheduleAndInitialLatents(name, pipeline, io, steps: steps, seeds: seeds, size: size, file: file, line: line)
        var records: [UNetStepRecord] = []
        var noise = BatchNoise(seeds: seeds)
        let latents = try pipeline.denoise(emb, noise: &noise, steps: steps, guidance: guidance, height: size, width: size) {
            records.append($0)
        }
        XCTAssertEqual(records.count, steps, file: file, line: line)
        return (latents, records)
    }

    /// Each decoded image against `<name>_<k>.png` in `dir`: same size, PSNR ≥ 40 dB (printed with the largest pixel difference).
    static func assertImages(_ images: [RGBImage], _ name: String, in dir: URL, count: Int,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(images.count, count, file: file, line: line)
        for (k, image) in images.enumerated() {
            let want = try RGBImage.readPNG(dir.appendingPathComponent("\(name)_\(k).png"))
            XCTAssertEqual(image.width, want.width, file: file, line: line)
            XCTAssertEqual(image.height, want.height, file: file, line: line)
            guard image.width == want.width, image.height == want.height else { continue }
            let p = psnr(image, want)
            print(String(format: "parity %-34@ PSNR %.2f dB  max pixel diff %d", "\(name) image \(k)" as NSString, p,
                         maxPixelDiff(image, want)))
            XCTAssertGreaterThanOrEqual(p, 40, "\(name) image \(k): PSNR \(p) dB < 40", file: file, line: line)
        }
    }

    /// Max |got - want| relative to max |want| (infinity for a shape mismatch or a NaN).
    static func relativeError(_ got: Tensor, _ want: Tensor) -> Float {
        guard got.shape == want.shape else { return .infinity }
        var maxAbs: Float = 0, refMax: Float = 0
        for i in 0..<got.count {
            let d = abs(got.data[i] - want.data[i])
            maxAbs = d.isNaN ? .infinity : max(maxAbs, d)
            refMax = max(refMax, abs(want.data[i]))
        }
        return maxAbs / max(refMax, 1e-30)
    }

    static func makeTempDir(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("mixdq-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
