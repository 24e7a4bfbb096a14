import Foundation
import XCTest

/// The reference Python (PyTorch, h5py, PIL) that interoperability tests call when it exists:
/// `$MIXDQ_REFERENCE_PYTHON`, else the repo's `.venv-reference/bin/python` that
/// `scripts/reference/setup_venv.sh` makes. Without it the calling test is skipped (CI has none).
enum ReferencePython {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var path: String {
        if let p = ProcessInfo.processInfo.environment["MIXDQ_REFERENCE_PYTHON"], !p.isEmpty { return p }
        return repoRoot.appendingPathComponent(".venv-reference/bin/python").path
    }

    /// Runs `script` with `args`; throws `XCTSkip` when the interpreter or one of `modules` is missing,
    /// and returns stdout+stderr after asserting a zero exit.
    static func run(_ script: String, _ args: [String], modules: [String],
                    file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let python = path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw XCTSkip("no reference Python at \(python) (set MIXDQ_REFERENCE_PYTHON or run scripts/reference/setup_venv.sh)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        for module in modules where text.contains("No module named '\(module)'") {
            throw XCTSkip("\(module) is not installed in \(python)")
        }
        XCTAssertEqual(p.terminationStatus, 0, text, file: file, line: line)
        return text
    }
}
