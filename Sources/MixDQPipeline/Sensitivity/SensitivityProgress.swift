import Foundation

/// One stderr line per finished layer: position, layer, scores, elapsed time and the ETA from the
/// mean time per layer measured in this process (journaled layers count as done, not as speed).
public struct SensitivityProgress {
    public let total: Int
    private var done: Int
    private var measured = 0
    private let start: Date

    public init(total: Int, alreadyDone: Int, start: Date = Date()) {
        self.total = total; done = alreadyDone; self.start = start
    }

    public mutating func finished(_ layer: String, _ values: [Double], now: Date = Date()) -> String {
        done += 1
        measured += 1
        let elapsed = now.timeIntervalSince(start)
        let eta = elapsed / Double(measured) * Double(total - done)
        let shown = values.map { String(format: "%.6g", $0) }.joined(separator: ", ")
        return "[\(done)/\(total)] model.\(layer): [\(shown)]  elapsed \(ProgressMeter.clock(elapsed)), ETA \(ProgressMeter.clock(eta))"
    }
}
