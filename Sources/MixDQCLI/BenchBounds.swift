import ArgumentParser
import MixDQIO

/// The size and repetition checks the bench commands share (GenerationLimits for image sizes and
/// batches, so a benchmark cannot ask for what a generation run could not).
enum BenchBounds {
    static let maxRuns = 10_000

    static func check(height: Int? = nil, width: Int? = nil, batch: Int? = nil, runs: Int, warmup: Int) throws {
        if let height, let p = GenerationLimits.imageSideProblem(height) { throw ValidationError("--height \(p)") }
        if let width, let p = GenerationLimits.imageSideProblem(width) { throw ValidationError("--width \(p)") }
        if let batch, let p = GenerationLimits.countProblem(batch, max: GenerationLimits.maxBatchSize) { throw ValidationError("--batch \(p)") }
        if let p = GenerationLimits.countProblem(runs, max: maxRuns) { throw ValidationError("--runs \(p)") }
        if !(0...maxRuns).contains(warmup) { throw ValidationError("--warmup must be between 0 and \(maxRuns), found \(warmup)") }
    }
}
