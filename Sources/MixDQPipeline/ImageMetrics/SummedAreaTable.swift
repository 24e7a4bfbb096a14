/// Sums of a per-pixel integer quantity over any axis-aligned box in O(1), so SSIM's box filter
/// costs the same for a 511-pixel window as for a 7-pixel one. Integer sums are exact (8-bit
/// products summed over any image that fits in memory stay far below 2^63), so the only rounding
/// is in the SSIM formula itself.
struct SummedAreaTable {
    let width: Int
    let height: Int
    /// `(height + 1) x (width + 1)`; entry `(y, x)` is the sum over rows `0..<y`, columns `0..<x`.
    private var table: [Int64]

    init(width: Int, height: Int, value: (_ pixel: Int) -> Int64) {
        self.width = width
        self.height = height
        let stride = width + 1
        var table = [Int64](repeating: 0, count: (height + 1) * stride)
        for y in 0..<height {
            var rowSum: Int64 = 0
            for x in 0..<width {
                rowSum += value(y * width + x)
                table[(y + 1) * stride + x + 1] = table[y * stride + x + 1] + rowSum
            }
        }
        self.table = table
    }

    /// The sum over the `size x size` box whose top-left pixel is `(x, y)`.
    @inline(__always)
    func boxSum(x: Int, y: Int, size: Int) -> Int64 {
        let stride = width + 1
        let top = y * stride, bottom = (y + size) * stride
        return table[bottom + x + size] - table[bottom + x] - table[top + x + size] + table[top + x]
    }
}
