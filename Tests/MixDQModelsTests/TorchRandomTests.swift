import Foundation
import XCTest
import MixDQCompute
import MixDQModels

/// Goldens: Tests/Fixtures/rng/randn.json from scripts/reference/make_rng_scheduler_fixtures.py
/// (torch 2.15 on an AVX-512 x86 CPU; float32 values stored as bit patterns).
final class TorchRandomTests: XCTestCase {
    private static let fixture: [String: Any] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/rng/randn.json").standardizedFileURL
        let data = try! Data(contentsOf: url)
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    private static func bits(_ hex: String) -> [UInt32] {
        let utf8 = Array(hex.utf8)
        precondition(utf8.count % 8 == 0)
        return stride(from: 0, to: utf8.count, by: 8).map { UInt32(String(decoding: utf8[$0..<($0 + 8)], as: UTF8.self), radix: 16)! }
    }

    /// Exact comparison of bit patterns; reports the count and the largest difference.
    private func assertBitExact(_ got: [Float], _ want: [UInt32], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, "\(label): count", file: file, line: line)
        var mismatches = 0
        var maxAbs: Float = 0
        for (g, w) in zip(got, want) where g.bitPattern != w {
            mismatches += 1
            maxAbs = max(maxAbs, abs(g - Float(bitPattern: w)))
        }
        XCTAssertEqual(mismatches, 0, "\(label): \(mismatches) values differ, max abs diff \(maxAbs)", file: file, line: line)
    }

    func testMT19937MatchesReferenceSequence() {
        // std::mt19937 with the default seed 5489: the 10000th output is 4123659995 (C++ standard)
        var mt = MT19937(seed: 5489)
        var last: UInt32 = 0
        for _ in 0..<10_000 { last = mt.next() }
        XCTAssertEqual(last, 4_123_659_995)
    }

    func testRandnMatchesTorchForSeedsAndShapes() {
        let cases = Self.fixture["randn"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 13)
        for c in cases {
            let seed = UInt64(c["seed"] as! Int)
            let shape = c["shape"] as! [Int]
            var g = TorchGenerator(seed: seed)
            let t = g.randn(shape)
            XCTAssertEqual(t.shape, shape)
            assertBitExact(t.scalars, Self.bits(c["bits"] as! String), "seed \(seed) shape \(shape)")
        }
    }

    func testSequencesShareTheGeneratorAndTheCachedNormal() {
        // [7] leaves a cached Box-Muller value that the next small tensor consumes first;
        // tensors >= 16 elements neither read nor clear that cache.
        for c in Self.fixture["sequences"] as! [[String: Any]] {
            var g = TorchGenerator(seed: UInt64(c["seed"] as! Int))
            let shapes = c["shapes"] as! [[Int]]
            let expected = c["bits"] as! [String]
            for (shape, hex) in zip(shapes, expected) {
                assertBitExact(g.randn(shape).scalars, Self.bits(hex), "sequence seed \(c["seed"]!) shape \(shape)")
            }
        }
    }

    func testLargeLatentHashMatchesTorch() {
        let c = Self.fixture["large"] as! [String: Any]
        var g = TorchGenerator(seed: UInt64(c["seed"] as! Int))
        let values = g.randn(c["shape"] as! [Int]).scalars
        XCTAssertEqual(values.count, 16384)
        assertBitExact(Array(values.prefix(64)), Self.bits(c["head"] as! String), "64x64 head")
        assertBitExact(Array(values.suffix(64)), Self.bits(c["tail"] as! String), "64x64 tail")
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for v in values {
            let b = v.bitPattern
            for k in 0..<4 {
                h ^= UInt64((b >> (8 * UInt32(k))) & 0xFF)
                h = h &* 0x0000_0100_0000_01B3
            }
        }
        XCTAssertEqual(String(h, radix: 16).leftPadded(16), c["fnv1a64"] as! String)
    }

    func testPipelineNoiseStream() {
        // diffusers: latents = randn_tensor(shape, generator=g), then one randn_tensor per step.
        for c in Self.fixture["pipeline_noise"] as! [[String: Any]] {
            var g = TorchGenerator(seed: UInt64(c["seed"] as! Int))
            let shape = c["shape"] as! [Int]
            for (i, hex) in (c["bits"] as! [String]).enumerated() {
                assertBitExact(g.randn(shape).scalars, Self.bits(hex), "pipeline draw \(i)")
            }
        }
    }

    func testPortableKernelMatchesTorchDefaultCapability() {
        let section = Self.fixture["default_capability"] as! [String: Any]
        XCTAssertEqual(section["capability"] as? String, "DEFAULT")
        for c in section["randn"] as! [[String: Any]] {
            var g = TorchGenerator(seed: UInt64(c["seed"] as! Int), kernel: .portable)
            let shape = c["shape"] as! [Int]
            assertBitExact(g.randn(shape).scalars, Self.bits(c["bits"] as! String), "portable kernel shape \(shape)")
        }
    }

    func testManualSeedResetsStateAndCache() {
        var g = TorchGenerator(seed: 42)
        let first = g.randn([7]).scalars
        _ = g.randn([3])  // leaves a cached value
        g.manualSeed(42)
        XCTAssertEqual(g.randn([7]).scalars, first)
        XCTAssertEqual(g.initialSeed, 42)
    }

    func testFillNormalAppliesMeanAndStd() {
        var a = TorchGenerator(seed: 1)
        var b = TorchGenerator(seed: 1)
        let base = a.randn(count: 32)
        var scaled = [Float](repeating: 0, count: 32)
        scaled.withUnsafeMutableBufferPointer { b.fillNormal($0, mean: 2, std: 3) }
        for (x, y) in zip(base, scaled) { XCTAssertEqual(y, 2 + 3 * x, accuracy: 1e-5) }
    }

    func testInjectedNoiseReplaysInOrder() {
        var noise = InjectedNoise([Tensor(shape: [2], values: [1, 2]), Tensor(shape: [2], values: [3, 4])])
        XCTAssertEqual(noise.randn([2]).scalars, [1, 2])
        XCTAssertEqual(noise.randn([2]).scalars, [3, 4])
        XCTAssertEqual(noise.drawn, 2)
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
