import XCTest

/// The tool's malloc is tcmalloc (linked by Package.swift), not glibc's: checked on the built binary,
/// where `cpu-info` names the allocator only when `malloc` itself resolves to tcmalloc's.
final class AllocatorCLITests: XCTestCase {
    func testTheToolRunsOnTcmalloc() throws {
        let run = try MixDQCLI.succeed(["cpu-info"])
        let line = run.stdout.split(separator: "\n").first { $0.hasPrefix("allocator: ") }
        XCTAssertNotNil(line, run.stdout)
        XCTAssertTrue(line?.hasPrefix("allocator: gperftools ") == true,
                      "the mixdq binary does not allocate through tcmalloc: \(line ?? "no allocator line")")
    }
}
