import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file-system failure, naming the file the caller asked to write.
public enum IOError: Error, CustomStringConvertible, LocalizedError, Equatable {
    case cannotCreateDirectory(path: String, directory: String, reason: String)
    case notWritable(path: String, reason: String)
    case writeFailed(path: String, reason: String)
    case renameFailed(path: String, temporary: String, reason: String)

    public var path: String {
        switch self {
        case let .cannotCreateDirectory(p, _, _), let .notWritable(p, _), let .writeFailed(p, _), let .renameFailed(p, _, _):
            return p
        }
    }

    public var description: String {
        switch self {
        case let .cannotCreateDirectory(p, dir, reason):
            return "\(p): cannot create directory \(dir): \(reason)"
        case let .notWritable(p, reason):
            return "\(p): not writable: \(reason)"
        case let .writeFailed(p, reason):
            return "\(p): write failed: \(reason)"
        case let .renameFailed(p, tmp, reason):
            return "\(p): cannot rename \(tmp) into place: \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// Writes a file so that readers see either the old contents or the complete new ones, never a
/// prefix: data goes to a temporary file in the same directory (same file system, so the final
/// rename(2) is atomic), which is fsynced and renamed over the target. Any failure removes it.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { try $0.write(contentsOf: data) }
    }

    /// Streams the contents through `body`, for payloads too large to build in memory.
    /// Errors `body` throws are rethrown unchanged, except Foundation / POSIX write errors,
    /// which become `IOError.writeFailed` naming the path.
    public static func write(to url: URL, _ body: (FileHandle) throws -> Void) throws {
        let target = url.path
        let dir = url.deletingLastPathComponent()
        try ensureDirectory(dir, for: target)

        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)").path
        // 0o666 filtered by the umask: the result gets ordinary permissions (mkstemp would give 0600).
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw IOError.notWritable(path: target, reason: String(cString: strerror(errno))) }

        var fdOpen = true
        var renamed = false
        defer {
            if fdOpen { close(fd) }
            if !renamed { unlink(tmp) }
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        do {
            try body(handle)
        } catch let error as CocoaError {
            throw IOError.writeFailed(path: target, reason: FileErrorText.reason(error))
        } catch let error as POSIXError {
            throw IOError.writeFailed(path: target, reason: FileErrorText.reason(error))
        }
        guard fsync(fd) == 0 else { throw IOError.writeFailed(path: target, reason: "fsync: \(String(cString: strerror(errno)))") }
        fdOpen = false
        // close can report deferred write errors (NFS, quotas), so check it.
        guard close(fd) == 0 else { throw IOError.writeFailed(path: target, reason: "close: \(String(cString: strerror(errno)))") }
        guard rename(tmp, target) == 0 else {
            throw IOError.renameFailed(path: target, temporary: tmp, reason: String(cString: strerror(errno)))
        }
        renamed = true
    }

    private static func ensureDirectory(_ dir: URL, for target: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw IOError.cannotCreateDirectory(path: target, directory: dir.path, reason: "a non-directory file has that name")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw IOError.cannotCreateDirectory(path: target, directory: dir.path, reason: FileErrorText.reason(error))
        }
    }
}
