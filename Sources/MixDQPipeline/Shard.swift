import Foundation

/// One part of a job split over N machines: part `index` of `count` owns the items `i` with
/// `i % count == index` (images of fp-infer / infer, layers of the sensitivity search).
///
/// `auto` reads the part from the scheduler's environment:
/// - Slurm job arrays: `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, and `SLURM_ARRAY_TASK_MIN`
///   / `SLURM_ARRAY_TASK_STEP` when the array does not run 0, 1, 2, ... (`--array=1-8`, `0-14:2`);
/// - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX`, with the count from `MIXDQ_SHARD_COUNT`
///   (Kubernetes does not export `completions`; the manifest sets the variable to the same value).
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    public let index: Int, count: Int
    public init(index: Int, count: Int) { self.index = index; self.count = count }

    public static let whole = Shard(index: 0, count: 1)
    /// The environment variable a Kubernetes Indexed Job sets to its `completions`.
    public static let kubernetesCountVariable = "MIXDQ_SHARD_COUNT"

    /// Parses `I/N` with 0 <= I < N.
    public init?(_ text: String) {
        let p = text.split(separator: "/", omittingEmptySubsequences: false)
        guard p.count == 2, let i = Int(p[0]), let n = Int(p[1]), n > 0, (0..<n).contains(i) else { return nil }
        self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    public func owns(_ item: Int) -> Bool { item % count == index }

    /// `I/N`, or `auto` resolved from `environment` (Slurm array, then Kubernetes Indexed Job).
    public static func resolve(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Shard {
        if text != "auto" {
            guard let s = Shard(text) else { throw ShardError("--shard must be I/N with 0 <= I < N, or auto; got '\(text)'") }
            return s
        }
        if environment["SLURM_ARRAY_TASK_ID"] != nil { return try slurm(environment) }
        if environment["JOB_COMPLETION_INDEX"] != nil { return try kubernetes(environment) }
        throw ShardError("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX "
                         + "(a Kubernetes Indexed Job) is set; give --shard I/N")
    }

    static func slurm(_ env: [String: String]) throws -> Shard {
        let id = try integer(env, "SLURM_ARRAY_TASK_ID")
        let count = try integer(env, "SLURM_ARRAY_TASK_COUNT")
        let min = env["SLURM_ARRAY_TASK_MIN"] == nil ? 0 : try integer(env, "SLURM_ARRAY_TASK_MIN")
        let step = env["SLURM_ARRAY_TASK_STEP"] == nil ? 1 : try integer(env, "SLURM_ARRAY_TASK_STEP")
        guard count > 0 else { throw ShardError("--shard auto: SLURM_ARRAY_TASK_COUNT is \(count), must be positive") }
        guard step > 0 else { throw ShardError("--shard auto: SLURM_ARRAY_TASK_STEP is \(step), must be positive") }
        let offset = id - min
        guard offset >= 0, offset % step == 0, offset / step < count else {
            throw ShardError("--shard auto: SLURM_ARRAY_TASK_ID \(id) is not one of the \(count) task(s) from SLURM_ARRAY_TASK_MIN \(min) "
                             + "in steps of \(step) (an array with gaps such as --array=1,5,9 cannot be split evenly; use min-max[:step])")
        }
        return Shard(index: offset / step, count: count)
    }

    static func kubernetes(_ env: [String: String]) throws -> Shard {
        let index = try integer(env, "JOB_COMPLETION_INDEX")
        guard env[kubernetesCountVariable] != nil else {
            throw ShardError("--shard auto: JOB_COMPLETION_INDEX is set but \(kubernetesCountVariable) is not; "
                             + "set it in the Job's manifest to spec.completions")
        }
        let count = try integer(env, kubernetesCountVariable)
        guard count > 0, (0..<count).contains(index) else {
            throw ShardError("--shard auto: JOB_COMPLETION_INDEX \(index) is outside 0..<\(kubernetesCountVariable) (\(count))")
        }
        return Shard(index: index, count: count)
    }

    static func integer(_ env: [String: String], _ name: String) throws -> Int {
        let text = env[name] ?? ""
        guard let v = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw ShardError("--shard auto: \(name) is '\(text)', not an integer")
        }
        return v
    }
}

/// A `--shard` value or scheduler environment that names no valid shard.
public struct ShardError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}
