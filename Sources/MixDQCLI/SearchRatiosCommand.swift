import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline
import MixDQQuant

/// `mixdq search ratios`: the integer programme's tensor-ratio file, measured on the model's UNet.
struct SearchRatiosCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ratios",
        abstract: "Write a tensor-ratio YAML: weight (parameters / conv_in's), act (input elements per sample / 320) or params (weight elements).")
    @Option(help: "A diffusers model folder. Default: the embedded tiny SDXL-architecture model.") var model: String?
    @Option(help: "weight, act or params.") var type: String
    @Option(parsing: .unconditional, help: "Image height for act ratios (a multiple of 8).") var height = 512
    @Option(parsing: .unconditional, help: "Image width for act ratios (a multiple of 8).") var width = 512
    @Option(help: "Output YAML 'model.<layer>: ratio'.") var out: String

    func validate() throws {
        guard ["weight", "act", "params"].contains(type) else { throw ValidationError("--type \(type): expected weight, act or params") }
        if let p = GenerationLimits.imageSideProblem(height) { throw ValidationError("--height \(p)") }
        if let p = GenerationLimits.imageSideProblem(width) { throw ValidationError("--width \(p)") }
    }

    func run() throws {
        let folder = try model.map { ModelFolder(URL(fileURLWithPath: $0)) } ?? ModelFolder(DefaultModel.ensure(in: DefaultModel.defaultCache))
        let unet = try folder.loadUNet()
        let values: [(String, Double)]
        switch type {
        case "weight": values = try TensorRatioMeasurement.weightRatios(unet)
        case "act": values = try TensorRatioMeasurement.activationRatios(unet, height: height, width: width)
        default: values = TensorRatioMeasurement.parameterCounts(unet)
        }
        let ratios = TensorRatioMeasurement.ratios(values, source: out)
        try AtomicFile.write(Data(ratios.yamlString().utf8), to: URL(fileURLWithPath: out))
        print("wrote \(values.count) layer ratio(s) (\(type)\(type == "act" ? " at \(height)x\(width)" : "")) to \(out)")
    }
}
