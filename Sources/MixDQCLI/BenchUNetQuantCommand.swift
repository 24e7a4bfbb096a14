import Foundation
import MixDQCompute
import MixDQModels
import MixDQQuant

/// `mixdq bench unet --quant w8a8|MP.yaml`: the random-weight UNet with every Conv2d/Linear built
/// as an INT8-backend kernel as it loads (`BenchInt8KernelFactory`), timed like the fp32 bench, with
/// the CPU line, oneDNN's implementation names, the resident weight bytes and the peak RSS.
extension BenchUNet {
    func runQuantized(_ specText: String) throws {
        let spec = try BenchQuantSpec.parse(specText)
        let config = try UNetConfig.load(URL(fileURLWithPath: modelConfig!))
        if case .file = spec { try spec.check(layers: try Self.layerPaths(config)) }
        let inputs = BenchInputs.unet(config, height: height, width: width, seed: seed)
        let context = inputs.encoderHiddenStates
        let token0 = Array(UnsafeBufferPointer(start: context.data, count: context.shape[2]))

        let t0 = Date()
        let factory = BenchInt8KernelFactory(weightBits: spec.bits(for:), token0Row: token0, weightOnly: spec.weightOnly, floatPrecision: precision)
        // --precision: weight-only layers and attention, as `infer --precision` runs them.
        let unet = try UNet2DConditionModel(config: config, weights: RandomWeightSource(seed: seed), precision: .fp32, attentionPrecision: precision,
                                            packForInference: true, kernelFactory: factory)
        let buildSeconds = Date().timeIntervalSince(t0)
        let result = try BenchTiming.run(warmup: warmup, runs: runs, profile: profile, quiet: json) { _ = try unet(inputs) }

        let cpu = CPUInfo.current.summary
        let implementations = Self.implementations(factory, config: config, height: height, width: width)
        let fp32Bytes = 4 * factory.weightParameters
        let bitsText = factory.layersPerBits.keys.sorted().map { "W\($0): \(factory.layersPerBits[$0]!)" }.joined(separator: ", ")
        // Codes rest packed at the narrowest of 2, 4, 8 bits that holds them (QuantizedUNetFormat.restBits).
        let codesHeld = spec.weightOnly ? "dequantized \(precision.rawValue)" : factory.layersPerBits.keys.contains { $0 < 8 } ? "packed 2/4/8-bit" : "s8"
        if json {
            func quoted(_ s: String) -> String {
                "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            }
            result.printJSON(fields: [
                ("component", "\"unet\""), ("precision", quoted(spec.label)), ("backend", "\"int8\""), ("height", "\(height)"),
                ("width", "\(width)"), ("params", "\(unet.parameterCount)"), ("quantized_layers", "\(factory.layerCount)"),
                ("weight_params", "\(factory.weightParameters)"), ("resident_weight_bytes", "\(factory.residentWeightBytes)"),
                ("fp32_weight_bytes", "\(fp32Bytes)"), ("codes_held", "\"\(codesHeld)\""), ("split_layers", "\(factory.splitLayers)"), ("pair_product_layers", "\(factory.pairProductLayers)"),
                ("cpu", quoted(cpu)), ("impl_matmul", quoted(implementations.matmul)), ("impl_conv", quoted(implementations.conv)),
                ("build_s", String(format: "%.1f", buildSeconds))])
        } else {
            print("mixdq bench unet  \(height)x\(width)  \(spec.label) on the int8 backend  params \(unet.parameterCount)")
            print("  CPU: \(cpu)")
            print("  quantized layers: \(factory.layerCount) (\(bitsText)), attention \(precision.rawValue), "
                  + (spec.weightOnly ? "weight-only (A16): activations and weights in \(precision.rawValue)"
                     : "activations u8; weight codes held as \(codesHeld) (peak adds one unpacked layer: \(Int8UnpackScratch.byteCount) bytes of shared scratch)"))
            print("  oneDNN: matmul \(implementations.matmul); conv \(implementations.conv); 7-bit activation split in \(factory.splitLayers) layer(s); VPMADDWD pair products in \(factory.pairProductLayers) layer(s)")
            print(String(format: "  resident weight bytes %.3f GiB (fp32 weights would be %.3f GiB: %.2fx)",
                         Double(factory.residentWeightBytes) / 1_073_741_824, Double(fp32Bytes) / 1_073_741_824,
                         Double(factory.residentWeightBytes) / Double(max(fp32Bytes, 1))))
            result.printTable(buildSeconds: buildSeconds)
        }
    }

    /// The model's Conv2d/Linear paths in order, from a build that reads no weight matrix.
    static func layerPaths(_ config: UNetConfig) throws -> [String] {
        let lister = LayerListingFactory()
        _ = try UNet2DConditionModel(config: config, weights: RandomWeightSource(seed: 0), kernelFactory: lister)
        return lister.paths
    }

    /// oneDNN's implementation for a representative Linear (the first GEGLU projection) and Conv2d
    /// (the first resnet conv1) at the shapes this run used; "-" where the model has none.
    static func implementations(_ factory: BenchInt8KernelFactory, config: UNetConfig, height: Int, width: Int)
        -> (matmul: String, conv: String) {
        let levels = config.blockOutChannels.count
        func side(_ path: String) -> (h: Int, w: Int) {
            let parts = path.split(separator: ".")
            var level = 0
            if parts.count > 1, let i = Int(parts[1]) {
                if parts[0] == "down_blocks" { level = i } else if parts[0] == "up_blocks" { level = levels - 1 - i }
            } else if parts.first == "mid_block" { level = levels - 1 }
            // Each level halves with ceil, as the stride-2 convs (k3, p1) do.
            var (h, w) = (height / 8, width / 8)
            for _ in 0..<level { (h, w) = ((h + 1) / 2, (w + 1) / 2) }
            return (h, w)
        }
        var matmul = "-", conv = "-"
        if let (path, k) = factory.linears.first(where: { $0.path.hasSuffix("ff.net.0.proj") }) {
            let (h, w) = side(path)
            matmul = ((try? k.matmul.implementation(rows: h * w)) ?? "?") + " (\(path), \(h * w) rows)"
        }
        if let (path, k) = factory.convs.first(where: { $0.path.hasSuffix("resnets.0.conv1") }) {
            let (h, w) = side(path)
            conv = ((try? k.convolution.implementation(batch: 1, height: h, width: w)) ?? "?") + " (\(path), \(h)x\(w))"
        }
        return (matmul, conv)
    }
}

/// Records every layer path and hands back kernels that are never run (the layer list of a config
/// without generating its weight matrices).
private final class LayerListingFactory: LayerKernelFactory {
    private(set) var paths: [String] = []

    func kernel(for layer: LayerSpec, weights: WeightSource) throws -> InstalledKernel? {
        paths.append(layer.path)
        switch layer.geometry {
        case .linear: return .linear(NotRunnable(path: layer.path))
        case .conv2d: return .conv2d(NotRunnable(path: layer.path))
        }
    }

    private final class NotRunnable: LinearKernel, Conv2dKernel {
        struct Called: Error, CustomStringConvertible { let path: String; var description: String { "\(path): listing-only layer was run" } }
        let path: String
        init(path: String) { self.path = path }
        func forward(_ x: Tensor) throws -> Tensor { throw Called(path: path) }
        func forward(_ x: FeatureMap) throws -> FeatureMap { throw Called(path: path) }
    }
}
