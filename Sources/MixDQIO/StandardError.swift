import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress and notes for the terminal. A failing stderr (closed, `2>/dev/full`) must never stop a
/// run, so write errors are ignored here (Foundation's `FileHandle.write` traps on them).
public enum StandardError {
    public static func write(_ text: String) {
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { writeToFD2($0.baseAddress! + done, $0.count - done) }
            if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}

/// write(2) on file descriptor 2 (outside the enum, whose own `write` would shadow it).
private func writeToFD2(_ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(2, bytes, count)
}
