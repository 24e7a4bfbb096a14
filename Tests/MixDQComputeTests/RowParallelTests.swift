import CKernels
import Foundation
import MixDQCompute
import XCTest

/// `RowParallel` on its two pools: every part runs exactly once (more parts than threads, one part,
/// nested calls), and beside oneDNN the OpenMP team is the one used.
final class RowParallelTests: XCTestCase {
    /// Counts how many times each index was handed to a body, from any thread.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [Int]
        init(_ n: Int) { counts = Array(repeating: 0, count: n) }
        func record(_ i: Int) { lock.lock(); counts[i] += 1; lock.unlock() }
        var values: [Int] { lock.lock(); defer { lock.unlock() }; return counts }
    }

    func testOpenMPTeamIsUsedBesideOneDNN() {
        // libdnnl links libgomp, so it is loaded in every process that links MixDQCompute.
        XCTAssertEqual(mdq_openmp_available(), 1)
        if ProcessInfo.processInfo.environment["MIXDQ_PARALLEL"] != "dispatch" {
            XCTAssertEqual(RowParallel.pool, .openMP)
        }
    }

    func testEveryPartRunsExactlyOnceOnEachPool() {
        for pool in [RowParallel.Pool.openMP, .dispatch] {
            for parts in [1, 2, 3, 7, 8, 17, 64] {
                let tally = Tally(parts)
                RowParallel.forEachPart(parts, on: pool) { tally.record($0) }
                XCTAssertEqual(tally.values, Array(repeating: 1, count: parts), "\(pool), \(parts) parts")
            }
        }
    }

    func testNestedCallsRunEveryInnerPartOnce() {
        for pool in [RowParallel.Pool.openMP, .dispatch] {
            let tally = Tally(4 * 5)
            RowParallel.forEachPart(4, on: pool) { outer in
                RowParallel.forEachPart(5, on: pool) { inner in tally.record(outer * 5 + inner) }
            }
            XCTAssertEqual(tally.values, Array(repeating: 1, count: 20), "\(pool)")
        }
    }

    func testNoPartsRunsNothing() {
        var called = false
        RowParallel.forEachPart(0, on: .openMP) { _ in called = true }
        XCTAssertFalse(called)
        XCTAssertEqual(mdq_parallel_for(0, { _, _ in }, nil), 0)
    }

    /// The rows a row-parallel pass hands out cover 0..<rows once, in order within each range.
    func testRowRangesCoverEveryRowOnce() {
        for rows in [1, 5, 97, 4096] {
            let tally = Tally(rows)
            RowParallel.run(rows: rows, rowLength: RowParallel.minimumElements) { range in
                for r in range { tally.record(r) }
            }
            XCTAssertEqual(tally.values, Array(repeating: 1, count: rows), "\(rows) rows")
        }
    }
}
