import Foundation

/// Process memory figures from /proc (Linux).
public enum ProcessMemory {
    /// Peak resident set size in bytes (VmHWM).
    public static var peakResidentBytes: Int { field("VmHWM:") }
    public static var residentBytes: Int { field("VmRSS:") }
    private static func field(_ name: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(name) {
            let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}
