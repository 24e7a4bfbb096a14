import Foundation
import MixDQCompute
import MixDQModels

/// The cost weights of the integer programme measured on a UNet (mixdq-method.md §6.5), in model
/// order: weight ratio = weight elements / `conv_in`'s, act ratio = input elements per sample / 320,
/// and plain weight-element counts (for `--max-bytes`).
public enum TensorRatioMeasurement {
    /// The original's act-ratio unit.
    public static let activationUnit = 320.0
    /// CLIP's token count: the text context every cross-attention K/V reads.
    public static let textTokens = 77

    /// Weight elements of every layer (biases stay fp32 in every format, so they are not counted).
    public static func parameterCounts(_ unet: UNet2DConditionModel) -> [(String, Double)] {
        unet.layers.map { ($0.path, Double($0.geometry.weightShape.reduce(1, *))) }
    }

    public static func weightRatios(_ unet: UNet2DConditionModel) throws -> [(String, Double)] {
        let counts = parameterCounts(unet)
        guard let unit = counts.first(where: { $0.0 == "conv_in" })?.1, unit > 0 else {
            throw SearchInputError("the UNet has no conv_in layer to measure weight ratios against")
        }
        return counts.map { ($0.0, $0.1 / unit) }
    }

    /// One forward of a single sample at `height`×`width` pixels (latent /8) with zero inputs; each
    /// layer's `inputHook` records its input elements. Hooks are removed afterwards.
    public static func activationRatios(_ unet: UNet2DConditionModel, height: Int, width: Int) throws -> [(String, Double)] {
        let config = unet.config
        var inputs = UNetInputs(sample: Tensor(zeros: [1, config.inChannels, height / 8, width / 8]), timesteps: [999],
                                encoderHiddenStates: Tensor(zeros: [1, textTokens, config.crossAttentionDimValue]))
        if config.hasTextTimeEmbedding, let timeDim = config.additionTimeEmbedDim, let projected = config.projectionClassEmbeddingsInputDim {
            inputs.textEmbeds = Tensor(zeros: [1, projected - 6 * timeDim])
            inputs.timeIds = Tensor(shape: [1, 6], values: [Float(height), Float(width), 0, 0, Float(height), Float(width)])
        }
        // An LCM-distilled UNet's guidance embedding reaches time_embedding.cond_proj.
        if let dim = config.timeCondProjDim { inputs.timestepCond = Tensor(zeros: [1, dim]) }
        try unet.validate(inputs)
        var elements: [String: Int] = [:]
        let layers = unet.layers
        for layer in layers {
            let path = layer.path
            // The first call counts; every UNet layer runs once per forward.
            layer.inputHook = { x in if elements[path] == nil { elements[path] = x.count / max(x.shape.first ?? 1, 1) } }
        }
        defer { for layer in layers { layer.inputHook = nil } }
        _ = try unet(inputs)
        let unused = layers.filter { elements[$0.path] == nil }.map(\.path)
        guard unused.isEmpty else {
            throw SearchInputError("no input reached \(unused.count) layer(s) in a UNet forward: \(SearchInputError.list(unused))")
        }
        return layers.map { ($0.path, Double(elements[$0.path] ?? 0) / activationUnit) }
    }

    public static func ratios(_ values: [(String, Double)], source: String) -> LayerRatios {
        LayerRatios(layers: values.map(\.0), ratio: Dictionary(values, uniquingKeysWith: { a, _ in a }), source: source)
    }
}
