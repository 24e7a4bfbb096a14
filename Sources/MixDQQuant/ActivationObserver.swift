/// Per-tensor asymmetric activation quantizer state: the (EMA) range seen during calibration and
/// the scale / zero point it gives for every candidate bit width (mixdq-method.md §3.5).
public final class ActivationObserver {
    public let bitWidths: [Int]
    public let runningStat: Bool
    public let emaCompatRepeat: Bool
    /// Range state (after the last update) and parameters per bit width, in `bitWidths` order.
    public private(set) var rangeMin: Float?
    public private(set) var rangeMax: Float?
    public private(set) var delta: [Float]
    public private(set) var zeroPoint: [Float]
    public private(set) var batches = 0

    public init(bitWidths: [Int], runningStat: Bool, emaCompatRepeat: Bool) {
        self.bitWidths = bitWidths
        self.runningStat = runningStat
        self.emaCompatRepeat = emaCompatRepeat
        delta = Array(repeating: 0, count: bitWidths.count)
        zeroPoint = Array(repeating: 0, count: bitWidths.count)
    }

    public var isCalibrated: Bool { batches > 0 }

    /// Folds one calibration batch's min/max in.
    ///
    /// Clean mode: one EMA update per batch; every bit width's parameters come from the same range.
    /// Compat mode: as the original, the shared range is updated once per bit width inside the call,
    /// and bit width k takes the range after its own (k+1-th) update.
    public func observe(min lo: Float, max hi: Float) {
        let m = QuantSettings.emaMomentum
        func update() {
            if let a = rangeMin, let b = rangeMax, runningStat {
                rangeMin = a * m + lo * (1 - m)
                rangeMax = b * m + hi * (1 - m)
            } else {
                rangeMin = lo; rangeMax = hi
            }
        }
        if emaCompatRepeat {
            for (k, bits) in bitWidths.enumerated() {
                update()
                (delta[k], zeroPoint[k]) = UniformQuantizer.parameters(min: rangeMin!, max: rangeMax!, bits: bits, symmetric: false)
            }
        } else {
            update()
            for (k, bits) in bitWidths.enumerated() {
                (delta[k], zeroPoint[k]) = UniformQuantizer.parameters(min: rangeMin!, max: rangeMax!, bits: bits, symmetric: false)
            }
        }
        batches += 1
    }

    /// Sets stored parameters (from a checkpoint).
    public func load(delta: [Float], zeroPoint: [Float]) {
        precondition(delta.count == bitWidths.count && zeroPoint.count == bitWidths.count)
        self.delta = delta
        self.zeroPoint = zeroPoint
        batches = max(batches, 1)
    }

    public func parameters(bits: Int) -> (delta: Float, zeroPoint: Float) {
        let k = bitWidths.firstIndex(of: bits)!
        return (delta[k], zeroPoint[k])
    }
}
