import Foundation

/// Appends timestamped lines to `<base-path>/run.log` (and echoes them to stderr), like the
/// original scripts' logging setup.
public final class RunLog {
    public let url: URL
    private let handle: FileHandle
    private let formatter: DateFormatter

    public init(_ url: URL) throws {
        self.url = url
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw RunLogError(path: url.deletingLastPathComponent().path, reason: "cannot create folder (\(error.localizedDescription))")
        }
        if !fm.fileExists(atPath: url.path) { fm.createFile(atPath: url.path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: url.path) else {
            throw RunLogError(path: url.path, reason: "not writable")
        }
        handle = h
        handle.seekToEndOfFile()
        formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    }

    deinit { try? handle.close() }

    public func info(_ message: String) {
        let line = "\(formatter.string(from: Date())) - INFO - \(message)\n"
        handle.write(Data(line.utf8))
        FileHandle.standardError.write(Data(line.utf8))
    }
}

public struct RunLogError: Error, CustomStringConvertible, LocalizedError {
    public let path: String, reason: String
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
