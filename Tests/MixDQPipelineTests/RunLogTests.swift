import Foundation
import XCTest
import MixDQPipeline

/// run.log under concurrency and write failures (issue 7, "hardened inputs").
final class RunLogTests: XCTestCase {
    typealias Env = MixDQPipelineTestEnv

    /// Two writers on one file (as two shards of a job are: separate opens of the same path),
    /// each from its own thread: every line of both survives, whole.
    func testConcurrentWritersKeepEveryLine() throws {
        let url = try Env.tempDir("runlog").appendingPathComponent("run.log")
        let writers = [try RunLog(url), try RunLog(url)]
        let perWriter = 400
        DispatchQueue.concurrentPerform(iterations: writers.count) { w in
            for i in 0..<perWriter { writers[w].info("writer \(w) line \(i) " + String(repeating: "x", count: 100)) }
        }
        for w in writers { XCTAssertNoThrow(try w.check()) }
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, writers.count * perWriter, "lines were lost or split")
        for w in 0..<writers.count {
            for i in 0..<perWriter {
                let suffix = "- INFO - writer \(w) line \(i) " + String(repeating: "x", count: 100)
                XCTAssertEqual(lines.filter { $0.hasSuffix(suffix) }.count, 1, "writer \(w) line \(i)")
            }
        }
    }

    /// Reopening appends (the log of a resumed run keeps the first run's lines).
    func testReopeningAppends() throws {
        let url = try Env.tempDir("runlog-append").appendingPathComponent("run.log")
        try RunLog(url).record("first")
        try RunLog(url).record("second")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].hasSuffix("INFO - first") && lines[1].hasSuffix("INFO - second"), "\(lines)")
    }

    /// A log on a full disk (/dev/full) neither traps nor passes silently: `info` goes on, and
    /// `record` / `check` throw an error naming the log file.
    func testAFullDiskIsAnErrorNamingTheLog() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { throw XCTSkip("no /dev/full on this system") }
        let url = try Env.tempDir("runlog-full").appendingPathComponent("run.log")
        try FileManager.default.createSymbolicLink(atPath: url.path, withDestinationPath: "/dev/full")
        let log = try RunLog(url)
        log.info("goes nowhere")
        XCTAssertThrowsError(try log.check()) { error in
            let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            XCTAssertTrue(text.contains(url.path) && text.contains("cannot write the run log"), text)
        }
        XCTAssertThrowsError(try RunLog(url).record("also nowhere")) { XCTAssertTrue("\($0)".contains(url.path), "\($0)") }
    }

    func testAFolderInPlaceOfTheLogIsNamed() throws {
        let url = try Env.tempDir("runlog-dir").appendingPathComponent("run.log")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        XCTAssertThrowsError(try RunLog(url)) { XCTAssertTrue("\($0)".contains(url.path), "\($0)") }
    }
}
