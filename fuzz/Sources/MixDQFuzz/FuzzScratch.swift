import Foundation

/// A private scratch folder for readers that only take a path: each input is written to a file
/// here first (in /dev/shm where there is one, so a run does not wear a disk).
enum FuzzScratch {
    static let folder: URL = {
        let shm = URL(fileURLWithPath: "/dev/shm", isDirectory: true)
        let parent = FileManager.default.isWritableFile(atPath: shm.path) ? shm : FileManager.default.temporaryDirectory
        let url = parent.appendingPathComponent("mixdq-fuzz-\(getpid())", isDirectory: true)
        try? FileManager.default.createDirectory(at: url.appendingPathComponent("tokenizer"), withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: FuzzScratch.folder) }
        return url
    }()

    /// Writes `data` to `name` in the scratch folder and returns its URL.
    @discardableResult
    static func write<D: DataProtocol>(_ data: D, as name: String) -> URL {
        let url = folder.appendingPathComponent(name)
        try? Data(data).write(to: url)
        return url
    }

    static func remove(_ name: String) {
        try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
    }

    /// Splits `input` at NUL bytes into at most `count` parts (later NULs stay in the last part).
    static func parts(_ input: Data, count: Int) -> [Data] {
        var out: [Data] = []
        var rest = input[...]
        while out.count < count - 1, let nul = rest.firstIndex(of: 0) {
            out.append(Data(rest[rest.startIndex..<nul]))
            rest = rest[(nul + 1)...]
        }
        out.append(Data(rest))
        return out
    }
}
