import Foundation
import MixDQIO
#if canImport(Glibc)
import Glibc
#endif

/// Appends timestamped lines to `<base-path>/run.log` (and echoes them to stderr), like the
/// original scripts' logging setup.
///
/// Several processes (shards of one job) may share a log: it is opened with O_APPEND and every
/// line goes out in one write(2), so lines never overwrite or split each other.
/// Write failures never trap: `info` remembers the first one (and says so on stderr once), and
/// `check()` / `record(_:)` turn it into a `RunLogError` naming the file, so a command fails when
/// its log is incomplete. Failures writing to stderr are ignored.
public final class RunLog {
    public let url: URL
    private let fd: Int32
    private let formatter: DateFormatter
    private let lock = NSLock()
    private var firstFailure: RunLogError?

    public init(_ url: URL) throws {
        self.url = url
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw RunLogError(path: folder.path, reason: "cannot create folder (\(FileErrorText.reason(error)))")
        }
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw RunLogError(path: url.path, reason: "cannot open the log for appending (\(String(cString: strerror(errno))))")
        }
        self.fd = fd
        formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    }

    deinit { close(fd) }

    /// Logs a line. A failed write is remembered for `check()`; the line still goes to stderr.
    public func info(_ message: String) {
        let line = "\(formatter.string(from: Date())) - INFO - \(message)\n"
        if let reason = append(line) {
            lock.lock()
            let isFirst = firstFailure == nil
            if isFirst { firstFailure = RunLogError(path: url.path, reason: "cannot write the run log (\(reason))") }
            lock.unlock()
            if isFirst { StandardError.write("warning: \(url.path): cannot write the run log (\(reason))\n") }
        }
        StandardError.write(line)
    }

    /// Logs a line and throws if it (or any earlier line) could not be written: for a command's
    /// first line, so an unwritable log stops the run before any work.
    public func record(_ message: String) throws {
        info(message)
        try check()
    }

    /// Throws the first write failure, if any.
    public func check() throws {
        lock.lock()
        defer { lock.unlock() }
        if let firstFailure { throw firstFailure }
    }

    /// One write(2) of the whole line; returns why it failed, or nil.
    private func append(_ line: String) -> String? {
        let bytes = Array(line.utf8)
        while true {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n == bytes.count { return nil }
            if n < 0 && errno == EINTR { continue }
            return n < 0 ? String(cString: strerror(errno)) : "short write: \(n) of \(bytes.count) bytes (disk full?)"
        }
    }
}

public struct RunLogError: Error, CustomStringConvertible, LocalizedError {
    public let path: String, reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }
    public var errorDescription: String? { description }
}

/// A one-line progress report with rate and ETA, for long jobs.
public struct ProgressMeter {
    public let total: Int
    public let label: String
    private let start = Date()
    public private(set) var done = 0

    public init(total: Int, label: String) { self.total = total; self.label = label }

    public mutating func advance(by n: Int) -> String {
        done += n
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        return String(format: "%@ %d/%d (%.0f%%), %.2f/s, elapsed %@, ETA %@", label as NSString, done, total,
                      100 * Double(done) / Double(max(total, 1)), rate,
                      ProgressMeter.clock(elapsed) as NSString, ProgressMeter.clock(eta) as NSString)
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return String(format: "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60)
    }
}
