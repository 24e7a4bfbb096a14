/// Scalar ports of the float `log256_ps` and `sincos256_ps` from PyTorch's
/// `aten/src/ATen/native/cpu/avx_mathfun.h` (Cephes polynomials by Julien Pommier).
///
/// Why: on x86 CPUs with AVX2 (and AVX-512) torch's `randn` for float tensors with at least 16
/// elements runs Box-Muller through these approximations, not through libm. They differ from
/// `logf`/`sinf`/`cosf` in the last bits, so bit-parity with torch needs the same operation
/// sequence. PyTorch is built by GCC with `-mfma` for that kernel and GCC contracts a
/// multiply feeding an add into one fused multiply-add, so the fused steps are written with
/// `addingProduct` where the compiled kernel fuses them. Verified bit for bit against torch 2.15
/// (2M values; without the fusion about 1 value in 100 is off by one ulp).
enum AVXMathFun {
    // log constants
    static let sqrtHalf: Float = 0.707106781186547524
    static let logP: [Float] = [7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1,
                                1.4249322787E-1, -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1,
                                3.3333331174E-1]
    static let logQ1: Float = -2.12194440e-4
    static let logQ2: Float = 0.693359375
    // sin/cos constants
    static let minusDP1: Float = -0.78515625
    static let minusDP2: Float = -2.4187564849853515625e-4
    static let minusDP3: Float = -3.77489497744594108e-8
    static let sinP0: Float = -1.9515295891E-4
    static let sinP1: Float = 8.3321608736E-3
    static let sinP2: Float = -1.6666654611E-1
    static let cosP0: Float = 2.443315711809948E-005
    static let cosP1: Float = -1.388731625493765E-003
    static let cosP2: Float = 4.166664568298827E-002
    static let fourOverPi: Float = 1.27323954473516

    /// `a * b + c` with one rounding, as the FMA instruction in the compiled kernel.
    @inline(__always)
    static func madd(_ a: Float, _ b: Float, _ c: Float) -> Float {
        c.addingProduct(a, b)
    }

    /// `log256_ps` for one lane; the input is in (0, 1] here, so the invalid/denormal masks never fire.
    static func log(_ input: Float) -> Float {
        if !(input > 0) { return input == 0 ? -.infinity : .nan }
        var x = max(input, Float(bitPattern: 0x0080_0000))
        let exponentBits = Int32(bitPattern: x.bitPattern >> 23) - 0x7F
        var e = Float(exponentBits) + 1
        // keep the mantissa, force the exponent to 0.5 ≤ x < 1
        x = Float(bitPattern: (x.bitPattern & ~0x7F80_0000) | Float(0.5).bitPattern)
        let below = x < sqrtHalf
        let tmp: Float = below ? x : 0
        x = x - 1
        e = e - (below ? 1 : 0)
        x = x + tmp
        let z = x * x
        var y = madd(logP[0], x, logP[1])
        for k in 2...8 { y = madd(y, x, logP[k]) }
        y = y * x
        // y = y*z + e*q1: GCC fuses the first multiply of the pair it meets
        let eq1 = e * logQ1
        y = madd(y, z, eq1)
        y = madd(-z, 0.5, y)
        x = x + y
        x = madd(e, logQ2, x)
        return x
    }

    /// `sincos256_ps` for one lane.
    static func sincos(_ input: Float) -> (sin: Float, cos: Float) {
        var signSin = input.sign == .minus
        var x = abs(input)
        var y = x * fourOverPi
        var j = Int32(y)  // cvtt: truncation
        j = (j &+ 1) & ~1
        y = Float(j)
        let swapSin = (j & 4) != 0
        let polyMaskSin = (j & 2) == 0  // true: the sine polynomial y2 is the sine
        x = madd(y, minusDP1, x)
        x = madd(y, minusDP2, x)
        x = madd(y, minusDP3, x)
        let jc = j &- 2
        let signCos = (~jc & 4) != 0
        if swapSin { signSin.toggle() }

        let z = x * x
        var yc = madd(cosP0, z, cosP1)
        yc = madd(yc, z, cosP2)
        yc = yc * z
        yc = madd(yc, z, -(z * 0.5))
        yc = yc + 1

        var ys = madd(sinP0, z, sinP1)
        ys = madd(ys, z, sinP2)
        ys = ys * z
        ys = madd(ys, x, x)

        // ysin2 = poly ? ys : 0, ysin1 = poly ? 0 : yc; then both sums as in the kernel
        let ysin2: Float = polyMaskSin ? ys : 0
        let ysin1: Float = polyMaskSin ? 0 : yc
        let y2r = ys - ysin2
        let yr = yc - ysin1
        var s = ysin1 + ysin2
        var c = yr + y2r
        if signSin { s = -s }
        if signCos { c = -c }
        return (s, c)
    }
}
