import CMixDQCUDA
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why the CUDA backend cannot run here: which library paths were tried (with dlerror's text), which
/// symbol is missing, or what cudaGetDeviceCount said.
public struct CUDAUnavailableError: Error, CustomStringConvertible, LocalizedError {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "CUDA backend unavailable: \(reason)" }
    public var errorDescription: String? { description }
}

/// A call into libmixdq_cuda.so that failed: its status and the library's message.
public struct CUDAKernelError: Error, CustomStringConvertible, LocalizedError {
    public let call: String, status: Int32, message: String
    public var description: String { "\(call) failed (status \(status)): \(message)" }
    public var errorDescription: String? { description }
}

/// libmixdq_cuda.so (kernels/), opened with dlopen at run time so that the package builds and runs
/// on machines without CUDA; asking for it there is an error that says what is missing.
///
/// Where it is looked for: `$MIXDQ_CUDA_LIB` if set (that file only), else `libmixdq_cuda.so` next to
/// the executable, else `kernels/build/libmixdq_cuda.so` under the current directory.
public final class CUDALibrary: @unchecked Sendable {
    public static let fileName = "libmixdq_cuda.so"
    /// Every function the C header declares, as Sources/CMixDQCUDA/shim.h lists them.
    public static let symbolNames: [String] = {
        var names: [String] = []
        var i: Int32 = 0
        while let name = mixdq_cuda_symbol_name(i) { names.append(String(cString: name)); i += 1 }
        return names
    }()
    public static let apiVersion = Int32(MIXDQ_CUDA_SHIM_API_VERSION)

    public let path: String
    /// "name, sm_XY, N MiB" of device 0, after the library checked it runs the kernels.
    public let deviceDescription: String
    private let handle: UnsafeMutableRawPointer

    let lastError: mixdq_cuda_last_error_fn
    let malloc: mixdq_cuda_malloc_fn
    let free: mixdq_cuda_free_fn
    let copyToDevice: mixdq_cuda_copy_to_device_fn
    let copyToHost: mixdq_cuda_copy_to_host_fn
    let linearWorkspace: mixdq_cuda_linear_workspace_fn
    let conv2dWorkspace: mixdq_cuda_conv2d_workspace_fn
    let w8a8Linear: mixdq_cuda_w8a8_linear_fn
    let w8a8Conv2d: mixdq_cuda_w8a8_conv2d_fn

    /// The paths tried, in order, for an environment and executable directory.
    public static func candidatePaths(environment: [String: String], executableDirectory: URL?) -> [String] {
        if let explicit = environment["MIXDQ_CUDA_LIB"], !explicit.isEmpty { return [explicit] }
        var paths: [String] = []
        if let dir = executableDirectory { paths.append(dir.appendingPathComponent(fileName).path) }
        paths.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent("kernels/build").appendingPathComponent(fileName).path)
        return paths
    }

    private static let lock = NSLock()
    private static var opened: [String: CUDALibrary] = [:]

    /// Opens the library and device 0 (once per path per process), or throws what is missing.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> CUDALibrary {
        let exeDir = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent()
        let paths = candidatePaths(environment: environment, executableDirectory: exeDir)
        lock.lock(); defer { lock.unlock() }
        for p in paths { if let lib = opened[p] { return lib } }
        var tried: [String] = []
        for p in paths {
            guard let handle = dlopen(p, RTLD_NOW | RTLD_LOCAL) else {
                var why = dlerror().map { String(cString: $0) } ?? "dlopen failed"
                if why.hasPrefix(p + ": ") { why.removeFirst(p.count + 2) }  // glibc repeats the path
                tried.append("\(p): \(why)")
                continue
            }
            do {
                let lib = try CUDALibrary(path: p, handle: handle)
                opened[p] = lib
                return lib
            } catch {
                dlclose(handle)
                throw error
            }
        }
        let how = environment["MIXDQ_CUDA_LIB"].map { _ in " (from MIXDQ_CUDA_LIB)" } ?? " (set MIXDQ_CUDA_LIB to choose another)"
        throw CUDAUnavailableError("\(fileName) could not be loaded\(how); tried \(tried.joined(separator: "; ")). "
            + "Build it with `make -C kernels` (nvcc and CUTLASS headers from PyPI, kernels/README.md); running it needs an NVIDIA driver and an sm_80+ GPU.")
    }

    /// Resolves `name` as a function of type `T` (a C function pointer type from shim.h).
    public static func symbol<T>(_ handle: UnsafeMutableRawPointer, _ name: String, path: String, as: T.Type) throws -> T {
        _ = dlerror()
        guard let p = dlsym(handle, name) else {
            let why = dlerror().map { String(cString: $0) } ?? "not found"
            throw CUDAUnavailableError("\(path) has no symbol \(name) (\(why)); rebuild it from this checkout's kernels/ (make -C kernels)")
        }
        return unsafeBitCast(p, to: T.self)
    }

    private init(path: String, handle: UnsafeMutableRawPointer) throws {
        self.path = path
        self.handle = handle
        for name in Self.symbolNames { _ = try Self.symbol(handle, name, path: path, as: UnsafeMutableRawPointer.self) }
        func fn<T>(_ name: String, _ type: T.Type) throws -> T { try Self.symbol(handle, name, path: path, as: type) }
        let version = try fn("mixdq_cuda_api_version", mixdq_cuda_api_version_fn.self)()
        guard version == Self.apiVersion else {
            throw CUDAUnavailableError("\(path) has C API version \(version), this build expects \(Self.apiVersion); rebuild kernels/ (make -C kernels)")
        }
        let message = try fn("mixdq_cuda_last_error", mixdq_cuda_last_error_fn.self)
        lastError = message
        malloc = try fn("mixdq_cuda_malloc", mixdq_cuda_malloc_fn.self)
        free = try fn("mixdq_cuda_free", mixdq_cuda_free_fn.self)
        copyToDevice = try fn("mixdq_cuda_copy_to_device", mixdq_cuda_copy_to_device_fn.self)
        copyToHost = try fn("mixdq_cuda_copy_to_host", mixdq_cuda_copy_to_host_fn.self)
        linearWorkspace = try fn("mixdq_cuda_linear_workspace", mixdq_cuda_linear_workspace_fn.self)
        conv2dWorkspace = try fn("mixdq_cuda_conv2d_workspace", mixdq_cuda_conv2d_workspace_fn.self)
        w8a8Linear = try fn("mixdq_cuda_w8a8_linear", mixdq_cuda_w8a8_linear_fn.self)
        w8a8Conv2d = try fn("mixdq_cuda_w8a8_conv2d", mixdq_cuda_w8a8_conv2d_fn.self)

        let deviceCount = try fn("mixdq_cuda_device_count", mixdq_cuda_device_count_fn.self)
        var count: Int32 = 0
        let status = deviceCount(&count)
        guard status == 0 else {
            throw CUDAUnavailableError("\(path) loaded, but \(Self.text(message())) (status \(status)); the CUDA backend needs an NVIDIA driver and GPU")
        }
        guard count > 0 else { throw CUDAUnavailableError("\(path) loaded, but cudaGetDeviceCount found 0 devices") }
        let useDevice = try fn("mixdq_cuda_use_device", mixdq_cuda_use_device_fn.self)
        var text = [CChar](repeating: 0, count: 256)
        let used = useDevice(0, &text, text.count)
        guard used == 0 else { throw CUDAUnavailableError("\(path) loaded, device 0 refused: \(Self.text(message()))") }
        deviceDescription = String(cString: text)
    }

    /// A C string the library returned (it never returns NULL; said so if it did).
    static func text(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "(no message)" }

    /// Throws the library's message when `status` is not MIXDQ_CUDA_OK.
    func check(_ status: Int32, _ call: String) throws {
        guard status != 0 else { return }
        throw CUDAKernelError(call: call, status: status, message: Self.text(lastError()))
    }
}

/// Device memory owned by a Swift object (freed in deinit).
final class CUDABuffer {
    let library: CUDALibrary
    let pointer: UnsafeMutableRawPointer?
    let bytes: Int

    init(_ library: CUDALibrary, bytes: Int) throws {
        self.library = library
        self.bytes = bytes
        var p: UnsafeMutableRawPointer?
        try library.check(library.malloc(&p, max(bytes, 1)), "mixdq_cuda_malloc(\(bytes) bytes)")
        pointer = p
    }

    /// A device copy of `values`.
    convenience init<T>(_ library: CUDALibrary, copying values: [T]) throws {
        try self.init(library, bytes: values.count * MemoryLayout<T>.stride)
        try values.withUnsafeBytes { try upload($0.baseAddress, bytes: $0.count) }
    }

    func upload(_ host: UnsafeRawPointer?, bytes n: Int) throws {
        guard n > 0 else { return }
        guard n <= bytes else { throw CUDAKernelError(call: "upload", status: 1, message: "\(n) bytes into a \(bytes)-byte buffer") }
        try library.check(library.copyToDevice(pointer, host, n, nil), "mixdq_cuda_copy_to_device")
    }

    func download(_ host: UnsafeMutableRawPointer?, bytes n: Int) throws {
        guard n > 0 else { return }
        guard n <= bytes else { throw CUDAKernelError(call: "download", status: 1, message: "\(n) bytes from a \(bytes)-byte buffer") }
        try library.check(library.copyToHost(host, pointer, n, nil), "mixdq_cuda_copy_to_host")
    }

    deinit { _ = library.free(pointer) }
}
