import Foundation
import MixDQIO

/// FNV-1a 64 of a file's bytes or a string: identifies the checkpoint, calibration file and
/// prompts of a sensitivity run across machines (paths differ between them, contents do not).
/// Not cryptographic; it only has to tell runs apart.
public enum ContentDigest {
    static let offset: UInt64 = 0xcbf2_9ce4_8422_2325, prime: UInt64 = 0x100_0000_01b3

    public static func hex(of url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw SensitivityError("\(url.path): cannot open to identify the run")
        }
        defer { try? handle.close() }
        var h = offset
        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch {
                throw SensitivityError("\(url.path): cannot read (\(FileErrorText.reason(error)))")
            }
            if chunk.isEmpty { break }
            h = fold(h, chunk)
        }
        return String(format: "%016llx", h)
    }

    public static func hex(of text: String) -> String { String(format: "%016llx", fold(offset, Data(text.utf8))) }

    static func fold(_ start: UInt64, _ bytes: Data) -> UInt64 {
        bytes.withUnsafeBytes { raw in
            var h = start
            for b in raw.bindMemory(to: UInt8.self) { h = (h ^ UInt64(b)) &* prime }
            return h
        }
    }
}
