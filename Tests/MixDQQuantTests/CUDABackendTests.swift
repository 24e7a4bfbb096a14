import Foundation
import XCTest
import MixDQModels
import MixDQQuant
#if canImport(Glibc)
import Glibc
#endif

/// The CUDA backend's loader and C interface. The kernels themselves are tested by
/// kernels/tests (C++, needs a GPU); here: what a machine without the library, driver or GPU says,
/// and that the Swift side's function table matches the C header and the built library.
final class CUDABackendTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let builtLibrary = repo.appendingPathComponent("kernels/build/libmixdq_cuda.so")

    func testMissingLibraryNamesThePathAndDlerror() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-no-such-dir-\(getpid())/libmixdq_cuda.so").path
        XCTAssertThrowsError(try CUDALibrary.load(environment: ["MIXDQ_CUDA_LIB": path])) { error in
            let text = "\(error)"
            XCTAssertTrue(error is CUDAUnavailableError, text)
            XCTAssertTrue(text.hasPrefix("CUDA backend unavailable: libmixdq_cuda.so could not be loaded (from MIXDQ_CUDA_LIB)"), text)
            XCTAssertTrue(text.contains("\(path): "), "names the path tried: \(text)")
            XCTAssertTrue(text.contains("No such file or directory"), "carries dlerror's text: \(text)")
            XCTAssertTrue(text.contains("make -C kernels"), "says how to build it: \(text)")
        }
    }

    func testAFileThatIsNoLibraryIsRefusedWithDlerror() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-cuda-test-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = dir.appendingPathComponent("libmixdq_cuda.so")
        try Data("not an ELF file".utf8).write(to: fake)
        XCTAssertThrowsError(try CUDALibrary.load(environment: ["MIXDQ_CUDA_LIB": fake.path])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("\(fake.path): "), text)
            // glibc: "file too short" or "invalid ELF header"
            XCTAssertTrue(text.contains("too short") || text.contains("ELF"), "carries dlerror's text: \(text)")
        }
    }

    func testCandidatePaths() {
        let exe = URL(fileURLWithPath: "/opt/mixdq/bin")
        XCTAssertEqual(CUDALibrary.candidatePaths(environment: ["MIXDQ_CUDA_LIB": "/x/lib.so"], executableDirectory: exe), ["/x/lib.so"])
        let paths = CUDALibrary.candidatePaths(environment: [:], executableDirectory: exe)
        XCTAssertEqual(paths.count, 2)
        XCTAssertEqual(paths.first, "/opt/mixdq/bin/libmixdq_cuda.so")
        XCTAssertEqual(paths.last, URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent("kernels/build/libmixdq_cuda.so").path)
    }

    /// `--backend cuda` on a machine without the library, a driver or a GPU: the loader's error, thrown
    /// before any layer is touched.
    func testBackendChoiceCudaSaysWhatIsMissing() throws {
        XCTAssertEqual(BackendChoice(rawValue: "cuda"), .cuda)
        if let lib = try? CUDALibrary.load() {
            throw XCTSkip("the CUDA library and a GPU are here (\(lib.deviceDescription), \(lib.path)): nothing is missing")
        }
        let (unet, _) = try tinyUNet()
        let sim = try QuantSimulator(registry: unet.registry, settings: QuantSettings(bosAware: true))
        var loaderText = ""
        XCTAssertThrowsError(try CUDALibrary.load()) { loaderText = "\($0)" }
        XCTAssertThrowsError(try BackendChoice.cuda.resolve(for: sim)) { error in
            XCTAssertTrue(error is CUDAUnavailableError, "\(error)")
            XCTAssertEqual("\(error)", loaderText)
            XCTAssertTrue("\(error)".hasPrefix("CUDA backend unavailable: "), "\(error)")
        }
        XCTAssertEqual(sim.backendName, "fake", "nothing deployed")
    }

    /// Every function of kernels/include/mixdq_cuda.h has a typedef in Sources/CMixDQCUDA/shim.h with
    /// the same return type and parameters, in the same order as the loader's symbol list; the
    /// parameter block struct and the API version agree too.
    func testShimMatchesTheHeader() throws {
        let header = try String(contentsOf: Self.repo.appendingPathComponent("kernels/include/mixdq_cuda.h"), encoding: .utf8)
        let shim = try String(contentsOf: Self.repo.appendingPathComponent("Sources/CMixDQCUDA/shim.h"), encoding: .utf8)
        let declared = Self.functions(header, pattern: #"MIXDQ_CUDA_API[ \t]+([^;(\n]*?)\s*\b(mixdq_cuda_\w+)\s*\(([^)]*)\)\s*;"#)
        let typed = Self.functions(shim, pattern: #"typedef[ \t]+([^;(\n]*?)\s*\(\*\s*(mixdq_cuda_\w+)_fn\)\s*\(([^)]*)\)\s*;"#)
        XCTAssertEqual(declared.count, 19)
        XCTAssertEqual(declared.map(\.name), CUDALibrary.symbolNames, "shim's symbol list")
        XCTAssertEqual(declared.map(\.name), typed.map(\.name), "shim typedefs")
        for (d, t) in zip(declared, typed) {
            XCTAssertEqual(d.returns, t.returns, d.name)
            XCTAssertEqual(d.parameters, t.parameters, d.name)
        }
        XCTAssertEqual(Self.structFields(header), Self.structFields(shim))
        XCTAssertFalse(Self.structFields(header).isEmpty)
        XCTAssertTrue(header.contains("#define MIXDQ_CUDA_API_VERSION \(CUDALibrary.apiVersion)\n"))
        for constant in ["MIXDQ_CUDA_F16 0", "MIXDQ_CUDA_BF16 1", "MIXDQ_CUDA_F32 2"] {
            XCTAssertTrue(header.contains("#define \(constant)\n") && shim.contains("#define \(constant)\n"), constant)
        }
    }

    /// When kernels/ was built (make -C kernels): the library exports exactly the header's functions,
    /// reports this API version, and without a driver or GPU the loader names cudaGetDeviceCount's error.
    func testBuiltLibraryExportsTheFunctionTable() throws {
        let path = Self.builtLibrary.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("\(path) is not built (make -C kernels, which needs nvcc: kernels/README.md); nothing to compare")
        }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            return XCTFail("dlopen \(path): \(dlerror().map { String(cString: $0) } ?? "?")")
        }
        defer { dlclose(handle) }
        for name in CUDALibrary.symbolNames { XCTAssertNotNil(dlsym(handle, name), name) }
        if let exported = Self.exportedFunctions(path) {
            XCTAssertEqual(exported, Set(CUDALibrary.symbolNames), "exported mixdq_cuda_* functions (nm -D)")
        }
        let version = try CUDALibrary.symbol(handle, "mixdq_cuda_api_version", path: path, as: (@convention(c) () -> Int32).self)
        XCTAssertEqual(version(), CUDALibrary.apiVersion)
        do {
            let lib = try CUDALibrary.load(environment: ["MIXDQ_CUDA_LIB": path])
            XCTAssertFalse(lib.deviceDescription.isEmpty)  // a GPU machine
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.contains(path) && (text.contains("cudaGetDeviceCount") || text.contains("device 0")), text)
        }
    }

    // MARK: - parsing helpers

    static func functions(_ text: String, pattern: String) -> [(name: String, returns: String, parameters: String)] {
        guard let re = try? NSRegularExpression(pattern: pattern) else { return [] }
        let ns = text as NSString
        return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (ns.substring(with: m.range(at: 2)), squash(ns.substring(with: m.range(at: 1))), squash(ns.substring(with: m.range(at: 3))))
        }
    }

    /// The mixdq_cuda_qpart fields as "type name" lines, comments and spacing removed.
    static func structFields(_ text: String) -> [String] {
        guard let open = text.range(of: "typedef struct mixdq_cuda_qpart {"),
              let close = text.range(of: "} mixdq_cuda_qpart;", range: open.upperBound..<text.endIndex) else { return [] }
        return text[open.upperBound..<close.lowerBound].split(separator: "\n").compactMap { line in
            let code = line.components(separatedBy: "/*")[0].components(separatedBy: "//")[0]
            let s = squash(code)
            return s.isEmpty ? nil : s
        }
    }

    static func squash(_ s: String) -> String {
        s.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
    }

    /// Names of the mixdq_cuda_* functions the library exports, from `nm -D` (nil without nm).
    static func exportedFunctions(_ path: String) -> Set<String>? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/nm") else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/nm")
        p.arguments = ["-D", "--defined-only", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        return Set(lines.compactMap { line -> String? in
            let f = line.split(separator: " ")
            guard f.count == 3, f[1] == "T", f[2].hasPrefix("mixdq_cuda_") else { return nil }
            return String(f[2])
        })
    }
}
