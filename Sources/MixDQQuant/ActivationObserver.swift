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
    /// As the original's `init_quant_params`, the batch range is first widened to contain 0
    /// (`x_min = min(0, min x)`, `x_max = max(0, max x)`) and only then enters the EMA, so a
    /// one-signed batch pulls the state toward 0 on that side.
    /// Clean mode: one EMA update per batch; every bit width's parameters come from the same range.
    /// Compat mode: as the original, the shared range is updated once per bit width inside the call,
    /// and bit width k takes the range after its own (k+1-th) update.
    public func observe(min batchMin: Float, max batchMax: Float) {
        let lo = Swift.min(batchMin, 0), hi = Swift.max(batchMax, 0)
        // PyTorch evaluates `state * momentum + x * (1 - momentum)` with both Python scalars
        // rounded to float32 from double, so (1 - m) is float32(0.05), not 1 - float32(0.95).
        let m = Float(QuantSettings.emaMomentumValue), oneMinusM = Float(1 - QuantSettings.emaMomentumValue)
        func update() {
            if let a = rangeMin, let b = rangeMax, runningStat {
                rangeMin = a * m + lo * oneMinusM
                rangeMax = b * m + hi * oneMinusM
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
