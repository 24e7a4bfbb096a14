import CKernels

/// Elementwise and data-movement ops on fp32 tensors (the math runs in CKernels).
public enum Ops {
    public static func silu(_ x: Tensor) -> Tensor {
        let y = Tensor(uninitializedShape: x.shape); mdq_silu(x.data, y.data, x.count); return y
    }
    public static func geluErf(_ x: Tensor) -> Tensor {
        let y = Tensor(uninitializedShape: x.shape); mdq_gelu_erf(x.data, y.data, x.count); return y
    }
    public static func quickGelu(_ x: Tensor) -> Tensor {
        let y = Tensor(uninitializedShape: x.shape); mdq_quick_gelu(x.data, y.data, x.count); return y
    }
    /// GEGLU on a `[..., 2*inner]` projection: first half times GELU(second half).
    public static func geglu(_ proj: Tensor) -> Tensor {
        let twice = proj.shape.last!
        precondition(twice % 2 == 0)
        let inner = twice / 2
        let y = Tensor(uninitializedShape: Array(proj.shape.dropLast()) + [inner])
        RowParallel.run(rows: proj.count / twice, rowLength: twice) { r in
            mdq_geglu(proj.data + r.lowerBound * twice, y.data + r.lowerBound * inner, r.count, inner)
        }
        return y
    }
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.count == b.count, "add: \(a.shape) vs \(b.shape)")
        let y = Tensor(uninitializedShape: a.shape); mdq_add(a.data, b.data, y.data, a.count); return y
    }
    /// a += b in place (residual connections on freshly produced tensors).
    public static func addInPlace(_ a: Tensor, _ b: Tensor) {
        precondition(a.count == b.count, "add: \(a.shape) vs \(b.shape)")
        mdq_add(a.data, b.data, a.data, a.count)
    }
    /// x[b, p, :] += v[b, :] for a feature map and a per-sample channel vector (time embedding).
    public static func addChannelVector(_ x: FeatureMap, _ v: Tensor) {
        precondition(v.shape == [x.batch, x.channels], "per-channel add: \(v.shape) vs \(x.tensor.shape)")
        for b in 0..<x.batch {
            mdq_add_bias_rows(x.tensor.data + b * x.pixels * x.channels, v.data + b * x.channels, x.pixels, x.channels)
        }
    }
    /// fp32 -> bf16 (round to nearest even) across the cores: the staging copy every bf16 layer
    /// makes of its input.
    public static func convertToBF16(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, count: Int) {
        let chunk = 4096
        RowParallel.run(rows: (count + chunk - 1) / chunk, rowLength: chunk) { r in
            let lo = r.lowerBound * chunk, hi = min(count, r.upperBound * chunk)
            mdq_f32_to_bf16(x + lo, y + lo, hi - lo)
        }
    }
    public static func scale(_ x: Tensor, by s: Float) -> Tensor {
        let y = Tensor(uninitializedShape: x.shape); mdq_scale(x.data, y.data, x.count, s); return y
    }

    /// Channel concatenation of NHWC maps: `[h, skip]` with h first, as the UNet up path needs.
    public static func concatChannels(_ a: FeatureMap, _ b: FeatureMap) -> FeatureMap {
        precondition(a.batch == b.batch && a.height == b.height && a.width == b.width,
                     "concat: \(a.tensor.shape) vs \(b.tensor.shape)")
        let (ca, cb) = (a.channels, b.channels)
        let y = FeatureMap(batch: a.batch, height: a.height, width: a.width, channels: ca + cb)
        let rows = a.batch * a.pixels
        for r in 0..<rows {
            (y.tensor.data + r * (ca + cb)).update(from: a.tensor.data + r * ca, count: ca)
            (y.tensor.data + r * (ca + cb) + ca).update(from: b.tensor.data + r * cb, count: cb)
        }
        return y
    }

    /// Channels `range` of an NHWC map, copied out (one part of a split shortcut's input).
    public static func sliceChannels(_ x: FeatureMap, _ range: Range<Int>) -> FeatureMap {
        let c = x.channels
        if range == 0..<c { return x }
        let y = FeatureMap(batch: x.batch, height: x.height, width: x.width, channels: range.count)
        for r in 0..<(x.batch * x.pixels) {
            (y.tensor.data + r * range.count).update(from: x.tensor.data + r * c + range.lowerBound, count: range.count)
        }
        return y
    }

    /// Nearest-neighbour resize to (height, width) with torch's floor index rule
    /// (`out[y][x] = in[floor(y*H/outH)][floor(x*W/outW)]`); 2x is the common case.
    public static func upsampleNearest(_ x: FeatureMap, height: Int, width: Int) -> FeatureMap {
        let c = x.channels
        let y = FeatureMap(batch: x.batch, height: height, width: width, channels: c)
        for b in 0..<x.batch {
            let src = x.tensor.data + b * x.pixels * c
            let dst = y.tensor.data + b * height * width * c
            for oy in 0..<height {
                let iy = min(x.height - 1, Int((Double(oy) * Double(x.height) / Double(height)).rounded(.down)))
                for ox in 0..<width {
                    let ix = min(x.width - 1, Int((Double(ox) * Double(x.width) / Double(width)).rounded(.down)))
                    (dst + (oy * width + ox) * c).update(from: src + (iy * x.width + ix) * c, count: c)
                }
            }
        }
        return y
    }
}
