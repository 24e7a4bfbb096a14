import XCTest
import MixDQPipeline

/// `--shard I/N` and `--shard auto` (Slurm job arrays, Kubernetes Indexed Jobs).
final class ShardTests: XCTestCase {
    func testParsesIOverN() throws {
        XCTAssertEqual(Shard("3/8"), Shard(index: 3, count: 8))
        XCTAssertEqual(try Shard.resolve("0/1", environment: [:]), .whole)
        for bad in ["3/3", "-1/2", "1/0", "1", "a/b", "1/2/3", "/2", "1/", ""] {
            XCTAssertNil(Shard(bad), bad)
            XCTAssertThrowsError(try Shard.resolve(bad, environment: [:]), bad) { e in
                XCTAssertTrue("\(e)".contains("--shard must be I/N"), "\(e)")
            }
        }
        // Ownership partitions the items.
        let parts = (0..<3).map { s in (0..<10).filter { Shard(index: s, count: 3).owns($0) } }
        XCTAssertEqual(parts, [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]])
    }

    func testAutoFromASlurmArray() throws {
        // --array=0-3: ids 0..3, min 0.
        XCTAssertEqual(try Shard.resolve("auto", environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4",
                                                              "SLURM_ARRAY_TASK_MIN": "0"]), Shard(index: 2, count: 4))
        // --array=1-4: the task with id 1 is shard 0.
        XCTAssertEqual(try Shard.resolve("auto", environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4",
                                                              "SLURM_ARRAY_TASK_MIN": "1"]), Shard(index: 0, count: 4))
        XCTAssertEqual(try Shard.resolve("auto", environment: ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4",
                                                              "SLURM_ARRAY_TASK_MIN": "1"]), Shard(index: 3, count: 4))
        // --array=10-16:3 (10, 13, 16).
        XCTAssertEqual(try Shard.resolve("auto", environment: ["SLURM_ARRAY_TASK_ID": "13", "SLURM_ARRAY_TASK_COUNT": "3",
                                                              "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_STEP": "3"]),
                       Shard(index: 1, count: 3))
    }

    func testAutoFromAKubernetesIndexedJob() throws {
        XCTAssertEqual(try Shard.resolve("auto", environment: ["JOB_COMPLETION_INDEX": "1", "MIXDQ_SHARD_COUNT": "2"]),
                       Shard(index: 1, count: 2))
    }

    func testAutoWithAMissingOrBadEnvironmentSaysWhich() {
        let cases: [([String: String], String)] = [
            ([:], "neither SLURM_ARRAY_TASK_ID"),
            (["SLURM_ARRAY_TASK_ID": "1"], "SLURM_ARRAY_TASK_COUNT is ''"),
            (["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"], "SLURM_ARRAY_TASK_ID is 'x'"),
            (["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "2"], "SLURM_ARRAY_TASK_ID 5 is not one of the 2"),
            (["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1"], "SLURM_ARRAY_TASK_ID 0"),
            (["SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_STEP": "3"],
             "in steps of 3"),
            (["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "0"], "SLURM_ARRAY_TASK_COUNT is 0"),
            (["JOB_COMPLETION_INDEX": "0"], "MIXDQ_SHARD_COUNT is not"),
            (["JOB_COMPLETION_INDEX": "2", "MIXDQ_SHARD_COUNT": "2"], "JOB_COMPLETION_INDEX 2 is outside"),
            (["JOB_COMPLETION_INDEX": "0", "MIXDQ_SHARD_COUNT": "two"], "MIXDQ_SHARD_COUNT is 'two'"),
        ]
        for (env, message) in cases {
            XCTAssertThrowsError(try Shard.resolve("auto", environment: env), "\(env)") { e in
                XCTAssertTrue(e.localizedDescription.contains(message), "\(env): \(e.localizedDescription)")
                XCTAssertTrue(e.localizedDescription.contains("--shard auto"), e.localizedDescription)
            }
        }
    }
}
