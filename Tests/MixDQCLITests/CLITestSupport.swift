import Foundation
import XCTest

/// Runs the built `mixdq` binary as a subprocess (what a user or a script sees: exit status,
/// stdout, stderr, files). Everything lives in this namespace.
enum MixDQCLI {
    /// The package root, from this file's location (Tests/MixDQCLITests/CLITestSupport.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = packageRoot.appendingPathComponent("Tests").appendingPathComponent("Fixtures")

    #if DEBUG
    static let buildConfiguration = "debug"
    #else
    static let buildConfiguration = "release"
    #endif

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Where the binary may be, best first: `$MIXDQ_TEST_BINARY`; beside the running test bundle
    /// (the same build, whatever `--scratch-path`); `<package>/.build/<debug|release>/mixdq` for
    /// the configuration these tests were compiled in (`swift test -c release` builds
    /// `.build/release/mixdq`, since this target depends on MixDQCLI).
    static var candidates: [URL] {
        var list: [URL] = []
        if let env = ProcessInfo.processInfo.environment["MIXDQ_TEST_BINARY"], !env.isEmpty {
            list.append(URL(fileURLWithPath: env))
        }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            list.append(bundle.bundleURL.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("mixdq"))
        }
        if let exe = Bundle.main.executableURL, exe.lastPathComponent.hasSuffix(".xctest") {
            list.append(exe.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("mixdq"))
        }
        list.append(packageRoot.appendingPathComponent(".build").appendingPathComponent(buildConfiguration)
            .appendingPathComponent("mixdq"))
        return list
    }

    static let binaryResult: Result<URL, Failure> = {
        let fm = FileManager.default
        let all = candidates
        if let found = all.first(where: { fm.isExecutableFile(atPath: $0.path) }) { return .success(found) }
        return .failure(Failure(description: "the mixdq binary was not found (looked at: \(all.map(\.path).joined(separator: ", "))). "
            + "Build it first: swift build -c \(buildConfiguration) --build-tests (or set MIXDQ_TEST_BINARY)"))
    }()

    /// The binary, or an XCTFail with a clear message (and a thrown error that ends the test).
    static func binary(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        switch binaryResult {
        case let .success(url): return url
        case let .failure(error):
            XCTFail(error.description, file: file, line: line)
            throw error
        }
    }

    // MARK: Scratch space

    /// One scratch folder per test process, removed at exit.
    static let scratch: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("mixdq-cli-tests-\(getpid())-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: MixDQCLI.scratch) }
        return url
    }()

    /// `MIXDQ_CACHE` of every subprocess: the embedded default model is written here once.
    static var cache: URL { scratch.appendingPathComponent("cache") }

    /// A fresh, empty folder.
    static func tempDir(_ label: String) throws -> URL {
        let url = scratch.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    // MARK: Running

    struct Run: CustomStringConvertible {
        let arguments: [String]
        let status: Int32
        let stdout: String
        let stderr: String
        /// Ended by a signal (a trap, an abort) rather than by exit().
        var signaled = false
        var output: String { stdout + stderr }
        var description: String {
            "mixdq \(arguments.joined(separator: " ")) -> exit \(status)\n--- stdout\n\(stdout.suffix(3000))\n--- stderr\n\(stderr.suffix(3000))"
        }
        /// The last `Error: ...` line ArgumentParser prints, else the last stderr line.
        var errorLine: String {
            let lines = stderr.split(separator: "\n").map(String.init)
            return lines.last(where: { $0.hasPrefix("Error:") }) ?? lines.last ?? ""
        }
    }

    /// Runs `mixdq args` with `MIXDQ_CACHE` in the scratch folder; stdout and stderr go through
    /// files (no pipe can fill up). Killed after `timeout` seconds.
    @discardableResult
    /// `stderrTo` sends stderr to that file instead (e.g. /dev/full); `Run.stderr` is then empty.
    static func run(_ args: [String], cwd: URL? = nil, environment extra: [String: String] = [:], timeout: TimeInterval = 300,
                    stderrTo: URL? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let exe = try binary(file: file, line: line)
        let dir = try tempDir("proc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("stdout"), errURL = dir.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: stderrTo ?? errURL)
        let process = Process()
        process.executableURL = exe
        process.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["MIXDQ_CACHE"] = cache.path
        // The seeded random model, whose outputs the tests' expected values were derived from;
        // a test of the trained model passes MIXDQ_DEFAULT_MODEL=trained in `environment`.
        env["MIXDQ_DEFAULT_MODEL"] = "random"
        for (k, v) in extra { env[k] = v }
        process.environment = env
        process.currentDirectoryURL = cwd ?? packageRoot
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            XCTFail("mixdq \(args.joined(separator: " ")) ran past \(Int(timeout)) s and was killed", file: file, line: line)
        }
        process.waitUntilExit()
        try? out.close(); try? err.close()
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return Run(arguments: args, status: process.terminationStatus, stdout: stdout, stderr: stderr,
                   signaled: process.terminationReason == .uncaughtSignal)
    }

    /// Runs and asserts exit status 0.
    @discardableResult
    static func succeed(_ args: [String], environment: [String: String] = [:], timeout: TimeInterval = 300,
                        file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let r = try run(args, environment: environment, timeout: timeout, file: file, line: line)
        XCTAssertEqual(r.status, 0, "expected success:\n\(r)", file: file, line: line)
        if r.status != 0 { throw Failure(description: "mixdq \(args.first ?? "") failed") }
        return r
    }

    /// Runs and asserts a non-zero exit and an error message holding every one of `mentions`.
    @discardableResult
    static func fail(_ args: [String], mentioning mentions: [String], environment: [String: String] = [:], timeout: TimeInterval = 300,
                     file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let r = try run(args, environment: environment, timeout: timeout, file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "expected a non-zero exit:\n\(r)", file: file, line: line)
        XCTAssertFalse(r.signaled, "ended by signal \(r.status) (a trap?), not an error exit:\n\(r)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains("Error:"), "expected an 'Error:' line on stderr:\n\(r)", file: file, line: line)
        for m in mentions {
            XCTAssertTrue(r.errorLine.contains(m), "the error should mention '\(m)'; got: \(r.errorLine)\n\(r)", file: file, line: line)
        }
        return r
    }

    /// `calib-data` then `ptq --seed 42` into `outdir` with `config` (and `extra` arguments, e.g. `--model`):
    /// nil when both succeed, else which one failed and its output.
    static func calibrateAndQuantize(config: URL, outdir: URL, extra: [String] = []) throws -> Failure? {
        let a = try run(["calib-data", "--config", config.path] + extra)
        guard a.status == 0 else { return Failure(description: "calib-data failed:\n\(a)") }
        let b = try run(["ptq", "--config", config.path, "--outdir", outdir.path, "--seed", "42"] + extra)
        guard b.status == 0 else { return Failure(description: "ptq failed:\n\(b)") }
        return nil
    }

    // MARK: Inputs

    /// `configs/sdxl_turbo.yaml` (or `sourceConfig`) with a small calibration set: its `calib_data` keys replaced
    /// (`path` into `dir`, `n_samples`, `batch_size`, `captions` absolute, optionally
    /// `scale_value` / `n_steps`); every other line as in the repository's file.
    static func writeConfig(in dir: URL, nSamples: Int = 4, batchSize: Int = 2, scaleValue: Double? = nil, nSteps: Int? = nil,
                            captions: URL? = nil, calibPath: URL? = nil, name: String = "config.yaml",
                            source sourceConfig: String = "configs/sdxl_turbo.yaml") throws -> URL {
        let source = packageRoot.appendingPathComponent(sourceConfig)
        let text = try String(contentsOf: source, encoding: .utf8)
        var replace: [String: String] = [
            "path": "\"\((calibPath ?? dir.appendingPathComponent("calib.h5")).path)\"",
            "n_samples": "\(nSamples)",
            "batch_size": "\(batchSize)",
            "captions": "\"\((captions ?? packageRoot.appendingPathComponent("assets/coco/captions_mixdq_default.json")).path)\"",
        ]
        if let scaleValue { replace["scale_value"] = "\(scaleValue)" }
        if let nSteps { replace["n_steps"] = "\(nSteps)" }
        var section = ""
        var done = Set<String>()
        var indent = "    "
        var lines: [String] = []
        var calibEnd: Int? = nil
        for raw in text.components(separatedBy: "\n") {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            let isTop = !raw.hasPrefix(" ") && !raw.hasPrefix("\t") && !trimmed.isEmpty && !trimmed.hasPrefix("#")
            if isTop {
                if section == "calib_data" { calibEnd = lines.count }
                section = String(trimmed.prefix(while: { $0 != ":" }))
            }
            if section == "calib_data", !isTop, !trimmed.hasPrefix("#"), let colon = trimmed.firstIndex(of: ":") {
                let key = String(trimmed[..<colon])
                indent = String(raw.prefix(while: { $0 == " " || $0 == "\t" }))
                if let value = replace[key] {
                    lines.append("\(indent)\(key): \(value)")
                    done.insert(key)
                    continue
                }
            }
            lines.append(raw)
        }
        // Keys the repository file does not set (e.g. captions) go at the end of calib_data.
        let missing = replace.keys.filter { !done.contains($0) }.sorted()
        if !missing.isEmpty {
            guard let end = calibEnd else { throw Failure(description: "\(source.path): no calib_data section") }
            lines.insert(contentsOf: missing.map { "\(indent)\($0): \(replace[$0]!)" }, at: end)
        }
        let url = dir.appendingPathComponent(name)
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// A minimal safetensors file of F32 tensors (all zeros unless values are given).
    static func writeSafetensors(_ tensors: [(String, [Int], [Float]?)], to url: URL) throws {
        var header: [String: Any] = [:]
        var body = Data()
        for (name, shape, values) in tensors {
            let n = shape.reduce(1, *)
            let v = values ?? [Float](repeating: 0, count: n)
            precondition(v.count == n)
            let start = body.count
            v.withUnsafeBufferPointer { body.append(Data(buffer: $0)) }
            header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [start, body.count]] as [String: Any]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var length = UInt64(json.count).littleEndian
        var data = Data(bytes: &length, count: 8)
        data.append(json)
        data.append(body)
        try data.write(to: url)
    }

    /// Copies a folder (the default model, a fixture) so a test can damage the copy.
    static func copy(_ src: URL, to dst: URL) throws {
        try? FileManager.default.removeItem(at: dst)
        try FileManager.default.createDirectory(at: dst.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: src, to: dst)
    }

    /// Edits a JSON object file in place.
    static func editJSON(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
        guard var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
            throw Failure(description: "\(url.path): not a JSON object")
        }
        edit(&obj)
        try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]).write(to: url)
    }

    /// The embedded random default model, written once into the shared cache by `mixdq default-model --random`.
    static let defaultModelResult: Result<URL, Failure> = {
        let folder = scratch.appendingPathComponent("default-model")
        do {
            let r = try run(["default-model", "--random", "--output", folder.path])
            guard r.status == 0 else { return .failure(Failure(description: "mixdq default-model failed:\n\(r)")) }
            return .success(folder)
        } catch {
            return .failure(Failure(description: "mixdq default-model: \(error)"))
        }
    }()

    static func defaultModel(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        switch defaultModelResult {
        case let .success(url): return url
        case let .failure(error):
            XCTFail(error.description, file: file, line: line)
            throw error
        }
    }

    static func bytes(_ url: URL) -> Data? { try? Data(contentsOf: url) }
}

extension Result where Failure == MixDQCLI.Failure {
    /// The value of a shared set-up (e.g. a class's calib-data + ptq run); its failure fails the calling test.
    func value(file: StaticString = #filePath, line: UInt = #line) throws -> Success {
        switch self {
        case let .success(v): return v
        case let .failure(e):
            XCTFail(e.description, file: file, line: line)
            throw e
        }
    }
}
