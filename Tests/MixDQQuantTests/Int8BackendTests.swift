import Foundation
import XCTest
import MixDQCompute
import MixDQIO
import MixDQModels
import MixDQQuant

/// The oneDNN INT8 backend on the tiny SDXL UNet against the fake-quant backend it must reproduce.
final class Int8BackendTests: XCTestCase {
    /// Fake-quant UNet calibrated on the fixture input, its checkpoint, and a second UNet (same
    /// weights) loaded from that checkpoint for another backend.
    func calibratedPair(settings: QuantSettings = QuantSettings()) throws -> (fake: UNet2DConditionModel, fakeSim: QuantSimulator,
                                                                              other: UNet2DConditionModel, otherSim: QuantSimulator,
                                                                              inputs: UNetInputs, fp: Tensor) {
        let (unet, inputs) = try tinyUNet()
        let fp = try unet(inputs)
        let sim = try QuantSimulator(registry: unet.registry, settings: settings)
        try sim.calibrateWeights()
        sim.setQuantState(weight: true, activation: true)
        sim.setCalibratingActivations(true)
        _ = try unet(inputs)
        sim.setCalibratingActivations(false)
        let ckpt = FileManager.default.temporaryDirectory.appendingPathComponent("int8-backend-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: ckpt) }
        try QuantCheckpoint.save(sim, to: ckpt)
        let (other, _) = try tinyUNet()
        let otherSim = try QuantSimulator(registry: other.registry, settings: settings)
        try QuantCheckpoint.load(ckpt, into: otherSim)
        otherSim.setQuantState(weight: true, activation: true)
        return (unet, sim, other, otherSim, inputs, fp)
    }

    static func gamma(_ n: Int) -> Double { let u = 0x1p-24; return Double(n) * u / (1 - Double(n) * u) }

    /// Mixed precision over the whole UNet: 8, 4 and 2-bit weights in turn, some layers A16
    /// (weight-only), some fully FP (protected), some with 4-bit activations, the rest W·A8; BOS-aware
    /// K/V and split shortcuts on.
    func configure(_ sims: QuantSimulator..., bits: [Int] = [8, 4, 2]) {
        for sim in sims {
            for (i, l) in sim.layers.enumerated() {
                l.weightBits = bits[i % bits.count]
                l.weightEnabled = i % 7 != 3
                l.activationEnabled = i % 7 != 3 && i % 5 != 1
                l.activationBits = i % 11 == 2 ? 4 : 8   // MixDQ's activation MP uses 4-bit codes
            }
        }
    }

    /// Teacher-forced, layer by layer: every layer of the INT8 UNet, given the very input its fake-quant
    /// twin received, agrees with it within the float-rounding bound of the two computations of the
    /// same quantized sum: |int8 - fake| <= (γ_{K+5} + γ_4)(S + |b|) with S = Σ|x̂||ŵ| over the layer's
    /// K = in·k·k terms (the fp32 sum over dequantized values carries γ_K, the integer path's scale
    /// multiply, the part sum of split shortcuts and the bias add a few roundings more). Weight-only
    /// (A16) and FP layers run the same fp32 kernels on both backends: equal bit for bit.
    func testEveryLayerMatchesFakeQuantWithinTheRoundingBound() throws {
        let p = try calibratedPair()
        configure(p.fakeSim, p.otherSim)
        let inputs = try Self.layerInputs(p.fake, p.inputs)
        // |ŵ| kernels from the fake side (it still holds the FP weights) before the other side deploys.
        try p.otherSim.deploy(Int8Backend())
        var integerLayers = 0, exactLayers = 0, worst = 0.0, splitSeen = false, bosSeen = false
        for (path, x) in inputs {
            let f = p.fakeSim[path]!, fakeLayer = f.layer, intLayer = p.otherSim[path]!.layer
            let (yFake, yInt) = try (Self.run(fakeLayer, x), Self.run(intLayer, x))
            XCTAssertEqual(yFake.shape, yInt.shape, path)
            guard f.weightEnabled && f.activationEnabled else {
                XCTAssertEqual(yInt.scalars, yFake.scalars, "\(path): A16 / FP layers run the same fp32 kernel on both backends")
                exactLayers += 1
                continue
            }
            integerLayers += 1
            splitSeen = splitSeen || f.isSplit
            bosSeen = bosSeen || f.bosAware
            // x̂ per part, then S = |x̂| ⊛ |ŵ| in fp32 (non-negative terms: relative error ≤ γ_K).
            let xq = Tensor(uninitializedShape: x.shape)
            let channels = x.shape.last!
            for (part, range) in f.activationParts.enumerated() {
                let (d, z) = f.observers[part].parameters(bits: f.activationBits)
                for r in 0..<(x.count / channels) {
                    let off = r * channels + range.lowerBound
                    UniformQuantizer.fakeQuantize(x.data + off, xq.data + off, count: range.count, delta: d, zeroPoint: z,
                                                  bits: f.activationBits, symmetric: false)
                }
            }
            let s = try Self.absoluteProducts(xq, try f.quantizedWeight(bits: f.weightBits), f.site.geometry)
            let k = f.site.rowLength, out = f.site.outChannels
            let bias = fakeLayer.bias?.scalars ?? [Float](repeating: 0, count: out)
            let tokens = x.rank == 3 ? x.shape[1] : 1
            for i in 0..<yInt.count where f.bosAware && (i / out) % tokens == 0 {
                XCTAssertEqual(yInt.data[i], yFake.data[i], "\(path): BOS token 0 runs FP on both backends")
            }
            worst = max(worst, Self.worstRatio(yInt, yFake, "\(path) [\(f.weightBits)-bit weights] int8 vs fake quant") { i in
                (Self.gamma(k + 5) + Self.gamma(4)) * (Double(s.data[i]) * (1 + 2 * Self.gamma(k)) + Double(abs(bias[i % out])))
            })
        }
        print("tiny UNet, teacher-forced: \(integerLayers) integer layers within the rounding bound (worst error/bound \(worst)), \(exactLayers) A16/FP layers equal")
        XCTAssertGreaterThan(integerLayers, 50)
        XCTAssertTrue(splitSeen && bosSeen, "the configuration must exercise split shortcuts and BOS-aware K/V on the integer path")
    }

    /// Every layer's input in one forward of `unet` (teacher forcing: each layer is then run alone on it).
    static func layerInputs(_ unet: UNet2DConditionModel, _ inputs: UNetInputs) throws -> [(String, Tensor)] {
        var seen: [(String, Tensor)] = []
        for l in unet.registry.layers {
            let path = l.path
            l.inputHook = { (x: Tensor) in seen.append((path, Tensor(shape: x.shape, values: x.scalars))) }
        }
        defer { for l in unet.registry.layers { l.inputHook = nil } }
        _ = try unet(inputs)
        return seen
    }

    /// The largest |got - expected| / bound(i) over the outputs; fails at the first output past its bound.
    static func worstRatio(_ got: Tensor, _ expected: Tensor, _ what: String, bound: (Int) -> Double) -> Double {
        var worst = 0.0
        for i in 0..<got.count {
            let b = bound(i), err = Double(abs(got.data[i] - expected.data[i]))
            worst = max(worst, err / b)
            if err > b {
                XCTFail("\(what): output \(i) is \(got.data[i]), expected \(expected.data[i]) within \(b)")
                break
            }
        }
        return worst
    }

    /// S = |x| ⊛ |w| in fp32, the layer's own product over absolute values (non-negative terms:
    /// relative error ≤ γ_K).
    static func absoluteProducts(_ x: Tensor, _ w: Tensor, _ geometry: LayerGeometry) throws -> Tensor {
        let absX = Tensor(shape: x.shape, values: x.scalars.map(abs)), absW = Tensor(shape: w.shape, values: w.scalars.map(abs))
        switch geometry {
        case .linear: return try DNNLMatmul(weight: absW, bias: nil, precision: .fp32).forward(absX)
        case .conv2d(_, _, _, let st, let pd):
            return try DNNLConvolution(weight: absW, bias: nil, stride: st, padding: pd, precision: .fp32).forward(FeatureMap(absX)).tensor
        }
    }

    /// `--precision bf16` on the int8 backend: A16 and FP layers run oneDNN bf16 (input and weight
    /// rounded to bf16, fp32 accumulation), the integer layers are untouched. Teacher-forced against
    /// fake quant's fp32 on the same inputs: rounding x and w to bf16 (unit roundoff u = 2^-8) moves
    /// each product by at most (2u + u²)|x||w|, and the two fp32 sums carry γ_K each, so
    /// |bf16 - fp32| <= (2u + u² + 2γ_{K+2})·S + γ_2|b|. Integer layers stay within their own bound
    /// (`testEveryLayerMatchesFakeQuantWithinTheRoundingBound`) and are checked here only to be unchanged.
    func testA16AndFPLayersRunBF16WithinTheBF16RoundingBound() throws {
        guard Precision.bf16.isAvailable else { throw XCTSkip("no oneDNN bf16 kernels on this CPU (\(CPUInfo.current.summary))") }
        let p = try calibratedPair()
        configure(p.fakeSim, p.otherSim)
        let inputs = try Self.layerInputs(p.fake, p.inputs)
        let (reference, _) = try tinyUNet()   // the same integer layers on the fp32 int8 backend
        let referenceSim = try QuantSimulator(registry: reference.registry, settings: QuantSettings())
        let ckpt = FileManager.default.temporaryDirectory.appendingPathComponent("int8-bf16-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: ckpt) }
        try QuantCheckpoint.save(p.fakeSim, to: ckpt)
        try QuantCheckpoint.load(ckpt, into: referenceSim)
        configure(referenceSim)
        try referenceSim.deploy(Int8Backend())
        try p.otherSim.deploy(Int8Backend(floatPrecision: .bf16))
        let u = 0x1p-8
        var floatLayers = 0, changed = 0, worst = 0.0
        for (path, x) in inputs {
            let f = p.fakeSim[path]!
            let yBF16 = try Self.run(p.otherSim[path]!.layer, x)
            guard !(f.weightEnabled && f.activationEnabled) else {
                XCTAssertEqual(yBF16.scalars, try Self.run(referenceSim[path]!.layer, x).scalars, "\(path): integer layers do not depend on --precision")
                continue
            }
            floatLayers += 1
            let yFP32 = try Self.run(f.layer, x)
            let w = try f.weightEnabled ? f.quantizedWeight(bits: f.weightBits) : XCTUnwrap(f.layer.masterWeight, path)
            let s = try Self.absoluteProducts(x, w, f.site.geometry)
            let k = f.site.rowLength, out = f.site.outChannels
            let bias = f.layer.bias?.scalars ?? [Float](repeating: 0, count: out)
            if yBF16.scalars != yFP32.scalars { changed += 1 }
            worst = max(worst, Self.worstRatio(yBF16, yFP32, "\(path) bf16 vs fp32") { i in
                (2 * u + u * u + 2 * Self.gamma(k + 2)) * Double(s.data[i]) * (1 + 2 * Self.gamma(k)) + Self.gamma(2) * Double(abs(bias[i % out]))
            })
        }
        print("tiny UNet, teacher-forced: \(floatLayers) A16/FP layers in bf16 within the bf16 rounding bound (worst error/bound \(worst)), \(changed) of them differ from fp32")
        XCTAssertGreaterThan(floatLayers, 20)
        XCTAssertGreaterThan(changed, floatLayers / 2, "bf16 kernels must actually run (their outputs differ from fp32's)")
    }

    static func run(_ layer: WeightLayer, _ x: Tensor) throws -> Tensor {
        if let l = layer as? Linear { return try l(x) }
        if let c = layer as? Conv2d { return try c(FeatureMap(x)).tensor }
        throw LayerStateError(path: layer.path, reason: "neither Linear nor Conv2d")
    }

    /// End to end the two backends are the same quantizer; they differ only where a rounding
    /// difference moves an activation across a quantization boundary (one step, the size of the
    /// quantization error itself), and such moves spread through the network. So the INT8 UNet must be
    /// as close to FP as fake quant (within 1 dB) and differ from fake quant by no more than two
    /// independent quantization-noise realizations would (SQNR at most 3 dB below fake vs FP).
    func testUNetOutputAgreesWithFakeQuantEndToEnd() throws {
        for mixed in [false, true] {
            let p = try calibratedPair()
            if mixed { configure(p.fakeSim, p.otherSim, bits: [8, 4]) }   // 2-bit layers everywhere would leave no signal to compare
            let fake = try p.fake(p.inputs)
            try p.otherSim.deploy(Int8Backend())
            let int8 = try p.other(p.inputs)
            let (noise, agreement, int8Noise) = (sqnr(fake, p.fp), sqnr(int8, fake), sqnr(int8, p.fp))
            print(String(format: "tiny UNet %@: fake vs FP %.1f dB, int8 vs FP %.1f dB, int8 vs fake %.1f dB",
                         mixed ? "mixed precision" : "W8A8", noise, int8Noise, agreement))
            XCTAssertGreaterThanOrEqual(int8Noise, noise - 1, mixed ? "mixed" : "W8A8")
            XCTAssertGreaterThanOrEqual(agreement, noise - 3, mixed ? "mixed" : "W8A8")
        }
    }

    func testBackendChoice() throws {
        let p = try calibratedPair()
        XCTAssertEqual(try BackendChoice.automatic.resolve(for: p.otherSim).backend.name, "int8")
        p.otherSim["conv_in"]!.weightEnabled = false   // activations only: no integer path
        let auto = try BackendChoice.automatic.resolve(for: p.otherSim)
        XCTAssertEqual(auto.backend.name, "fake")
        XCTAssertTrue(auto.note?.contains("conv_in") ?? false, auto.note ?? "no note")
        XCTAssertThrowsError(try BackendChoice.int8.resolve(for: p.otherSim)) { error in
            XCTAssertTrue("\(error)".contains("conv_in") && "\(error)".contains("--backend fake"), "\(error)")
        }
        XCTAssertThrowsError(try p.otherSim.deploy(Int8Backend())) { error in XCTAssertTrue("\(error)".contains("conv_in"), "\(error)") }
        // bf16 float layers exist on the int8 backend only: no silent fall-back to fp32 fake quant.
        XCTAssertThrowsError(try BackendChoice.automatic.resolve(for: p.otherSim, floatPrecision: .bf16)) { error in
            XCTAssertTrue("\(error)".contains("conv_in") && "\(error)".contains("--precision bf16"), "\(error)")
        }
        for choice in [BackendChoice.fake, .cuda] {
            XCTAssertThrowsError(try choice.resolve(for: p.otherSim, floatPrecision: .bf16)) { error in
                XCTAssertTrue("\(error)".contains("--backend int8") && "\(error)".contains("--backend \(choice.rawValue)"), "\(error)")
            }
        }
        p.otherSim["conv_in"]!.weightEnabled = true
        let bf16 = try BackendChoice.int8.resolve(for: p.otherSim, floatPrecision: .bf16)
        XCTAssertEqual((bf16.backend as? Int8Backend)?.floatPrecision, .bf16)
        XCTAssertTrue(bf16.note?.contains("A16 and FP layers in bf16") ?? false, bf16.note ?? "no note")
        p.otherSim["conv_in"]!.weightEnabled = false
        // Nothing changed: the model still runs on fake quant.
        XCTAssertEqual(p.otherSim.backendName, "fake")
        XCTAssertNoThrow(try p.other(p.inputs))
    }

    func testQuantizedLayersRefusePrecisionChanges() throws {
        let p = try calibratedPair()
        try p.otherSim.deploy(Int8Backend())
        XCTAssertThrowsError(try p.other.registry.usePrecision(.fp32)) { error in
            XCTAssertTrue("\(error)".contains("conv_in") && "\(error)".contains("quantized"), "\(error)")
        }
    }
}
