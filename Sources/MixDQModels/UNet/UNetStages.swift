import MixDQCompute

/// One stage of the UNet forward, in execution order: the time (and SDXL text_time) embedding,
/// `conv_in`, each down block, the mid block, each up block, and the output head
/// (`conv_norm_out` + `conv_out`).
public enum UNetStage: Equatable, Sendable, CustomStringConvertible {
    case embedding, convIn, down(Int), mid, up(Int), out

    public var description: String {
        switch self {
        case .embedding: return "embedding"
        case .convIn: return "conv_in"
        case let .down(i): return "down_blocks.\(i)"
        case .mid: return "mid_block"
        case let .up(i): return "up_blocks.\(i)"
        case .out: return "conv_out"
        }
    }
}

/// What flows between stages: the inputs, the embedding once computed, the hidden state and the
/// skip stack. Tensors are never written in place by the blocks, so one state can seed many runs.
public struct UNetStageState {
    public let inputs: UNetInputs
    public internal(set) var emb: Tensor?
    public internal(set) var hidden: FeatureMap?
    public internal(set) var skips: [FeatureMap] = []
    /// The UNet output (NCHW), after the last stage.
    public internal(set) var output: Tensor?
    /// Stages already run.
    public internal(set) var next = 0
}

/// The forward as separate stages, so a caller can keep the state at a stage boundary and rerun
/// only the stages after it (the sensitivity search perturbs one layer and starts from the first
/// stage that contains it). Running every stage gives exactly `callAsFunction`'s output: both use
/// the same blocks in the same order on the same tensors.
extension UNet2DConditionModel {
    public var stages: [UNetStage] {
        [.embedding, .convIn] + downBlocks.indices.map { .down($0) } + [.mid] + upBlocks.indices.map { .up($0) } + [.out]
    }

    /// The index in `stages` of the stage that runs the layer `path` (a registry path), or nil.
    public func stageIndex(containing path: String) -> Int? {
        func under(_ prefix: String) -> Bool { path == prefix || path.hasPrefix(prefix + ".") }
        return stages.firstIndex { stage in
            switch stage {
            case .embedding: return under("time_embedding") || under("add_embedding")
            case .convIn: return under("conv_in")
            case .down, .mid, .up: return under(stage.description)
            case .out: return under("conv_out") || under("conv_norm_out")
            }
        }
    }

    /// The state before the first stage (inputs validated).
    public func stageStart(_ inputs: UNetInputs) throws -> UNetStageState {
        try validate(inputs)
        return UNetStageState(inputs: inputs)
    }

    /// Runs stages `state.next ..< end` (default: to the end).
    public func runStages(_ state: inout UNetStageState, to end: Int? = nil) throws {
        let all = stages
        let stop = min(end ?? all.count, all.count)
        while state.next < stop {
            try runStage(all[state.next], &state)
            state.next += 1
        }
    }

    private func runStage(_ stage: UNetStage, _ s: inout UNetStageState) throws {
        let context = s.inputs.encoderHiddenStates
        switch stage {
        case .embedding:
            s.emb = try embedding(s.inputs, trace: nil)
        case .convIn:
            let h = try convIn(FeatureMap.fromNCHW(s.inputs.sample))
            s.hidden = h
            s.skips = [h]
        case let .down(i):
            let (out, pushed) = try downBlocks[i](try s.hiddenState(), emb: try s.embedding(), context: context)
            s.hidden = out
            s.skips.append(contentsOf: pushed)
        case .mid:
            s.hidden = try midBlock(try s.hiddenState(), emb: try s.embedding(), context: context)
        case let .up(i):
            let block = upBlocks[i]
            s.hidden = try block(try s.hiddenState(), skips: &s.skips, emb: try s.embedding(), context: context,
                                 upsampleSize: upsampleSize(block, skips: s.skips))
        case .out:
            s.output = try convOut(convNormOut(try s.hiddenState(), silu: true)).toNCHW()
        }
    }

    /// Steps 1-4 of the forward: time embedding plus SDXL's text_time embedding.
    func embedding(_ inputs: UNetInputs, trace: ((String, Tensor) throws -> Void)?) throws -> Tensor {
        let b = inputs.sample.shape[0]
        let ts = inputs.timesteps.count == 1 ? Array(repeating: inputs.timesteps[0], count: b) : inputs.timesteps
        let tProj = timeProj(ts)                                        // [B, C0]
        try trace?("time_proj", tProj)
        let tEmb = try timeEmbedding(tProj, condition: inputs.timestepCond)   // [B, 4*C0]
        try trace?("time_emb", tEmb)
        var emb = tEmb
        if let addTimeProj, let addEmbedding, let text = inputs.textEmbeds, let ids = inputs.timeIds {
            let timeEmbeds = addTimeProj(ids.scalars).reshaped([b, 6 * addTimeProj.dim])   // id-major
            let addIn = Tensor(uninitializedShape: [b, text.shape[1] + timeEmbeds.shape[1]])
            let (dt, dk) = (text.shape[1], timeEmbeds.shape[1])
            for i in 0..<b {                                            // pooled text first
                (addIn.data + i * (dt + dk)).update(from: text.data + i * dt, count: dt)
                (addIn.data + i * (dt + dk) + dt).update(from: timeEmbeds.data + i * dk, count: dk)
            }
            let aug = try addEmbedding(addIn)
            try trace?("aug_emb", aug)
            emb = Ops.add(tEmb, aug)
        }
        try trace?("emb", emb)
        return emb
    }

    /// An upsampler takes the next skip's size, for latents that are not a multiple of 2^levels.
    func upsampleSize(_ block: UNetUpBlock, skips: [FeatureMap]) -> (Int, Int)? {
        let consumed = block.resnets.count
        guard block.upsampler != nil, skips.count > consumed else { return nil }
        let next = skips[skips.count - consumed - 1]
        return (next.height, next.width)
    }
}

/// A stage run out of order (its predecessors' results missing).
public struct UNetStageOrderError: Error, CustomStringConvertible {
    public let description: String
}

extension UNetStageState {
    func embedding() throws -> Tensor {
        guard let emb else { throw UNetStageOrderError(description: "UNet stage run before the embedding stage") }
        return emb
    }

    func hiddenState() throws -> FeatureMap {
        guard let hidden else { throw UNetStageOrderError(description: "UNet stage run before conv_in") }
        return hidden
    }
}
