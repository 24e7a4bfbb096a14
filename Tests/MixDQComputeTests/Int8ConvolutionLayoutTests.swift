import CKernels
import MixDQCompute
import XCTest

/// `DNNLInt8Convolution` packs its weights for a nominal 32x32 input. On CPUs where oneDNN picks the
/// weight layout by shape (AMX brgconv), a UNet-sized input can then find no fast kernel for that
/// layout and fall to the reference one (seen: a 64->64 3x3 conv at 64x64, 12.8 s instead of ~10 ms).
/// The kernel then repacks for the shape it runs; results must stay exact at every shape before
/// and after the repack.
final class Int8ConvolutionLayoutTests: XCTestCase {
    func testUNetSizedInputRunsAFastKernelAndStaysExact() throws {
        var rng = KernelTests.SplitMix64(seed: 93)
        let (c, o, k) = (64, 64, 3)
        let weights = (0..<(o * c * k * k)).map { _ in Int8(Int(rng.next() % 255) - 127) }
        let conv = try DNNLInt8Convolution(weightCodes: weights, outChannels: o, inChannels: c, kernelSize: k, stride: 1, padding: 1)
        // Small shape first (compiled on the nominal layout), then the large one, then the small one again.
        for (h, w) in [(8, 8), (64, 64), (8, 8), (64, 64)] {
            let x = (0..<(h * w * c)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let z: UInt8 = 77
            var want = [Int32](repeating: 0, count: h * w * o)
            mdq_conv_u8s8s32_ref(x, 1, h, w, c, weights, o, k, 1, 1, z, &want)
            let input = try conv.makeInput(batch: 1, height: h, width: w, padCode: z)
            x.withUnsafeBufferPointer { input.fill(from: $0.baseAddress!) }
            var got = [Int32](repeating: -1, count: want.count)
            try conv.accumulate(input, into: &got)
            let impl = try conv.implementation(batch: 1, height: h, width: w)
            XCTAssertEqual(got, want, "\(h)x\(w) (\(impl))")
            XCTAssertFalse(impl.hasPrefix("ref"), "\(h)x\(w) runs oneDNN's reference convolution (\(impl)) on \(CPUInfo.current.summary)")
        }
    }
}
