import Foundation
import MixDQCompute
import MixDQModels

/// The FP UNet state at every stage boundary for one input batch, so a run that perturbs one layer
/// starts from the first stage containing it instead of from the input (issue 9: "for SQNR, run
/// from the first block that contains the layer"). The stages before it are FP in both cases, so
/// the result is the full forward's bit for bit (UNetStagesTests).
///
/// Memory: the skip stack and one hidden state per boundary. Over `budgetBytes` the cache is
/// dropped and every run starts from the input (`isActive` false, `note` says so).
public final class FPStageCache {
    private let unet: UNet2DConditionModel
    private let start: UNetStageState
    /// `boundaries[k]`: the state before stage k (empty when inactive).
    private var boundaries: [UNetStageState] = []
    /// The FP output of the whole batch.
    public let fpOutput: Tensor
    public let heldBytes: Int
    public var isActive: Bool { !boundaries.isEmpty }
    public let note: String

    public init(unet: UNet2DConditionModel, inputs: UNetInputs, budgetBytes: Int) throws {
        self.unet = unet
        start = try unet.stageStart(inputs)
        var state = start
        var kept: [UNetStageState] = []
        var seen = Set<ObjectIdentifier>()
        var bytes = 0
        for _ in unet.stages {
            // Past the budget nothing more is kept, so the peak stays near the plain forward's.
            if bytes <= budgetBytes { kept.append(state) } else { kept = [] }
            try unet.runStages(&state, to: state.next + 1)
            // Distinct tensors only: consecutive boundaries share the skip stack.
            for t in [state.emb, state.hidden?.tensor].compactMap({ $0 }) + state.skips.map(\.tensor)
            where seen.insert(ObjectIdentifier(t)).inserted { bytes += t.count * 4 }
        }
        guard let out = state.output else { throw SensitivityError("the staged UNet forward produced no output") }
        fpOutput = out
        heldBytes = bytes
        let mib = { (b: Int) in String(format: "%.1f MiB", Double(b) / 1_048_576) }
        if bytes <= budgetBytes, kept.count == unet.stages.count {
            boundaries = kept
            note = "FP activations cached at \(unet.stages.count) stage boundaries (\(mib(bytes)) of a \(mib(budgetBytes)) budget): each layer runs from the first stage that contains it"
        } else {
            note = "FP stage cache would need \(mib(bytes)), over the \(mib(budgetBytes)) budget (--cache-mib): every layer runs the full forward"
        }
    }

    /// The UNet output with the simulator's current settings, from the boundary before the stage
    /// that contains `layer` (the full forward when the cache is off or the stage is unknown).
    public func output(perturbing layer: String) throws -> Tensor {
        var state = start
        if isActive, let k = unet.stageIndex(containing: layer) { state = boundaries[k] }
        try unet.runStages(&state)
        guard let out = state.output else { throw SensitivityError("the staged UNet forward produced no output") }
        return out
    }
}
