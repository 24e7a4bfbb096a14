import Foundation
import MixDQCompute

/// A weight source that fuses LoRA modules into the weights the model asks for (`<module>.weight`),
/// so every consumer (FP inference, calibration, quantization) sees the fused weights.
/// `finish()` also reports LoRA modules the model never asked for.
final class LoRAFusedWeightSource: WeightSource, @unchecked Sendable {
    let base: WeightSource
    let modules: [String: LoRAModule]
    let scale: Float
    let file: String
    let component: LoRAComponent
    let modelName: String
    let sgmNames: SGMModuleNames?
    private let lock = NSLock()
    private var matched: Set<String> = []

    init(base: WeightSource, modules: [String: LoRAModule], scale: Float, file: String, component: LoRAComponent, modelName: String,
         sgmNames: SGMModuleNames? = nil) {
        self.base = base
        self.modules = modules
        self.scale = scale
        self.file = file
        self.component = component
        self.modelName = modelName
        self.sgmNames = sgmNames
    }

    /// The name the file gives the module at `path`: dotted, kohya-flattened, or kohya's SGM name.
    func moduleName(_ path: String) -> String? {
        if modules[path] != nil { return path }
        let flat = LoRAKey.flattened(path)
        if modules[flat] != nil { return flat }
        if let sgm = sgmNames?.sgmPath(path).map(LoRAKey.flattened), modules[sgm] != nil { return sgm }
        return nil
    }

    func contains(_ key: String) -> Bool { base.contains(key) }

    func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        let t = try base.tensor(key, shape: shape)
        guard key.hasSuffix(".weight") else { return t }
        let path = String(key.dropLast(".weight".count))
        guard let name = moduleName(path), let module = modules[name] else { return t }
        // A copy: a source may hand out a tensor it keeps.
        let fused = t.copy()
        try LoRAFuse.apply(module, scale: scale, to: fused, file: file)
        lock.lock(); matched.insert(name); lock.unlock()
        return fused
    }

    func finish() throws {
        try base.finish()
        lock.lock(); let unmatched = modules.keys.filter { !matched.contains($0) }.sorted(); lock.unlock()
        if !unmatched.isEmpty {
            throw LoRAError.unmatchedModules(file: file, component: component.rawValue, modules: unmatched, model: modelName)
        }
    }
}
