import Foundation
import MixDQQuant

/// A rendered and measured candidate: its cost (mean bits, model bytes) and its images' scores.
public struct CandidateResult: Equatable {
    public var name: String
    public var file: URL
    /// Ratio-weighted mean bit width over the layers it quantizes (`CandidateFootprint.meanBits`).
    public var meanBits: Double
    /// Packed weight bytes of the model under it (`CandidateFootprint.weightBytes`).
    public var bytes: Double
    /// One per prompt, in prompt order.
    public var scores: [PromptScore]

    public init(name: String, file: URL, meanBits: Double, bytes: Double, scores: [PromptScore]) {
        self.name = name; self.file = file; self.meanBits = meanBits; self.bytes = bytes; self.scores = scores
    }

    /// The mean of `metric` over the prompts (PSNR: +inf when any image equals its FP image).
    public func mean(_ metric: ImageComparison.Metric) -> Double {
        scores.isEmpty ? .nan : scores.reduce(0.0) { $0 + $1.value(metric) } / Double(scores.count)
    }

    public func paretoPoint(_ metric: ImageComparison.Metric) -> ParetoFront.Point {
        ParetoFront.Point(meanBits: meanBits, bytes: bytes, quality: mean(metric))
    }

    /// Best first: the higher mean `metric`; ties go to fewer bytes, then fewer mean bits, then the name.
    public static func ranked(_ results: [CandidateResult], by metric: ImageComparison.Metric) -> [CandidateResult] {
        results.sorted { a, b in
            let qa = a.mean(metric), qb = b.mean(metric)
            if qa != qb { return qa > qb }
            if a.bytes != b.bytes { return a.bytes < b.bytes }
            if a.meanBits != b.meanBits { return a.meanBits < b.meanBits }
            return a.name < b.name
        }
    }
}
