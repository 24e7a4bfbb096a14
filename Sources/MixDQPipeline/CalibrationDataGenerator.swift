import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels

/// `calib-data` (the original gen_calib_data.py): runs the FP pipeline on the first `n_samples`
/// captions and records, per denoising step, what the UNet saw and produced, into one HDF5 file
/// with the original's names and `[T, N, ...]` shapes:
///
///   xs [T,N,4,h,w]   scaled latent UNet input      ts [T,N]            timestep per row
///   text_embs [T,N,77,D]                           outputs [T,N,4,h,w] FP UNet output (before CFG)
///   added_cond_kwargs/text_embeds [T,N,P]          added_cond_kwargs/time_ids [T,N,6]   (SDXL)
///   timestep_cond [T,N,D]                          (UNets with time_cond_proj_dim: the guidance embedding)
///   prompts [n_samples]                            (UTF-8 strings)
///
/// With classifier-free guidance (guidance > 1, no guidance embedding) every UNet row is recorded:
/// each batch contributes its unconditional rows then its conditional rows, so N = 2 * n_samples
/// and every dataset stays row-aligned (the original misaligns `ts` there). Root attributes say how rows map to prompts. The file is written under
/// `<path>.partial` and renamed when complete; a rerun resumes after the last finished batch.
public struct CalibrationDataGenerator {
    public var prompts: [String]
    public var batchSize: Int
    public var steps: Int
    public var guidance: Float
    public var height: Int
    public var width: Int
    public var seed: UInt64
    public var output: URL
    public var imageFolder: URL?

    public init(prompts: [String], batchSize: Int, steps: Int, guidance: Float, height: Int, width: Int, seed: UInt64,
                output: URL, imageFolder: URL?) {
        self.prompts = prompts; self.batchSize = batchSize; self.steps = steps; self.guidance = guidance
        self.height = height; self.width = width; self.seed = seed; self.output = output; self.imageFolder = imageFolder
    }

    public func run(_ pipeline: TextToImagePipeline, log: RunLog) throws {
        let unetConfig = try pipeline.unet.config
        let cfg = TextToImagePipeline.usesClassifierFreeGuidance(guidance, unetConfig)
        let rowsPerPrompt = cfg ? 2 : 1
        let n = prompts.count * rowsPerPrompt
        let (h, w, c) = (height / 8, width / 8, unetConfig.inChannels)
        let ctxDim = unetConfig.crossAttentionDimValue
        let batches = stride(from: 0, to: prompts.count, by: batchSize).map { $0..<min($0 + batchSize, prompts.count) }

        let writer = try HDF5Writer(target: output, resume: true)
        let file = writer.file
        var done = writer.resumed ? (try file.intAttribute("batches_done") ?? 0) : 0
        if writer.resumed, try file.attribute("layout") != layoutDescription(n: n, model: pipeline.folder.root.path) {
            log.info("existing \(writer.partialURL.path) was made with other settings; starting over")
            writer.discard()
            return try run(pipeline, log: log)
        }
        if !writer.resumed || !file.exists("xs") {
            done = 0
            try file.createFloatDataset("xs", shape: [steps, n, c, h, w])
            try file.createFloatDataset("outputs", shape: [steps, n, c, h, w])
            try file.createFloatDataset("ts", shape: [steps, n])
            try file.createFloatDataset("text_embs", shape: [steps, n, 77, ctxDim])
            if pipeline.isSDXL {
                let pooled = unetConfig.projectionClassEmbeddingsInputDim! - 6 * unetConfig.additionTimeEmbedDim!
                try file.createFloatDataset("added_cond_kwargs/text_embeds", shape: [steps, n, pooled])
                try file.createFloatDataset("added_cond_kwargs/time_ids", shape: [steps, n, 6])
            }
            if let dim = unetConfig.timeCondProjDim {
                try file.createFloatDataset("timestep_cond", shape: [steps, n, dim])
            }
            try file.writeStrings("prompts", prompts)
            try file.setAttribute("layout", layoutDescription(n: n, model: pipeline.folder.root.path))
            try file.setAttribute("guidance_scale", "\(guidance)")
            let negative = pipeline.negativeConditioning == .zeros ? "zero conditioning" : "the empty prompt encoded"
            try file.setAttribute("rows", cfg ? "per batch: unconditional rows (\(negative)) then conditional rows"
                                                : "one row per prompt")
            try file.setAttribute("seed", "image i uses torch.Generator().manual_seed(\(seed) + i)")
            try file.setAttribute("batches_done", 0)
            try file.flush()
        } else {
            log.info("resuming \(writer.partialURL.path) after \(done) of \(batches.count) batch(es)")
        }

        var meter = ProgressMeter(total: batches.count - done, label: "calibration batches")
        for (k, range) in batches.enumerated() where k >= done {
            let emb = try pipeline.encode(Array(prompts[range]))
            var noise = BatchNoise(seeds: range.map { seed &+ UInt64($0) })
            let row0 = range.lowerBound * rowsPerPrompt
            let latents = try pipeline.denoise(emb, noise: &noise, steps: steps, guidance: guidance, height: height, width: width) { r in
                let rows = r.sample.shape[0]
                try file.writeSlice("xs", start: [r.step, row0, 0, 0, 0], data: r.sample.reshaped([1] + r.sample.shape))
                try file.writeSlice("outputs", start: [r.step, row0, 0, 0, 0], data: r.output.reshaped([1] + r.output.shape))
                try file.writeSlice("ts", start: [r.step, row0], data: Tensor(shape: [1, rows], repeating: r.timestep))
                try file.writeSlice("text_embs", start: [r.step, row0, 0, 0], data: r.context.reshaped([1] + r.context.shape))
                if let t = r.textEmbeds, let ids = r.timeIds {
                    try file.writeSlice("added_cond_kwargs/text_embeds", start: [r.step, row0, 0], data: t.reshaped([1] + t.shape))
                    try file.writeSlice("added_cond_kwargs/time_ids", start: [r.step, row0, 0], data: ids.reshaped([1] + ids.shape))
                }
                if let c = r.timestepCond {
                    try file.writeSlice("timestep_cond", start: [r.step, row0, 0], data: c.reshaped([1] + c.shape))
                }
            }
            if let imageFolder {
                try FileManager.default.createDirectory(at: imageFolder, withIntermediateDirectories: true)
                for (i, image) in zip(range, try pipeline.decode(latents)) {
                    try image.writePNG(to: imageFolder.appendingPathComponent("\(i).png"))
                }
            }
            try file.setAttribute("batches_done", k + 1)
            try file.flush()
            log.info(meter.advance(by: 1))
        }
        try writer.finish()
        log.info("calibration data: \(output.path) (\(steps) step(s) x \(n) row(s))")
    }

    func layoutDescription(n: Int, model: String) -> String {
        "model=\(model) steps=\(steps) rows=\(n) batch=\(batchSize) size=\(width)x\(height) guidance=\(guidance) prompts=\(prompts.count) seed=\(seed)"
    }
}

/// The calibration set as PTQ consumes it: steps flattened into one pool of rows.
public struct CalibrationData {
    public let xs: Tensor, ts: [Float], textEmbs: Tensor, textEmbeds: Tensor?, timeIds: Tensor?
    /// The guidance embedding of UNets with `time_cond_proj_dim`.
    public let timestepCond: Tensor?
    public var count: Int { ts.count }

    public static func load(_ url: URL, nSamples: Int? = nil) throws -> CalibrationData {
        let f = try HDF5File.open(url)
        defer { try? f.close() }
        func flat(_ t: Tensor) -> Tensor { t.reshaped([t.shape[0] * t.shape[1]] + t.shape.dropFirst(2)) }
        var xs = try f.readTensor("xs"), ts = try f.readTensor("ts"), emb = try f.readTensor("text_embs")
        var pooled = f.exists("added_cond_kwargs/text_embeds") ? try f.readTensor("added_cond_kwargs/text_embeds") : nil
        var ids = f.exists("added_cond_kwargs/time_ids") ? try f.readTensor("added_cond_kwargs/time_ids") : nil
        var cond = f.exists("timestep_cond") ? try f.readTensor("timestep_cond") : nil
        if let n = nSamples, n < xs.shape[1] {
            // Keep the first n rows of every step, as get_quant_calib_data does.
            func take(_ t: Tensor) -> Tensor {
                let per = t.count / (t.shape[0] * t.shape[1])
                let out = Tensor(uninitializedShape: [t.shape[0], n] + t.shape.dropFirst(2))
                for s in 0..<t.shape[0] { (out.data + s * n * per).update(from: t.data + s * t.shape[1] * per, count: n * per) }
                return out
            }
            xs = take(xs); ts = take(ts); emb = take(emb); pooled = pooled.map(take); ids = ids.map(take); cond = cond.map(take)
        }
        return CalibrationData(xs: flat(xs), ts: flat(ts).scalars, textEmbs: flat(emb), textEmbeds: pooled.map(flat),
                               timeIds: ids.map(flat), timestepCond: cond.map(flat))
    }

    /// Rows `indices` as one UNet batch.
    public func batch(_ indices: [Int]) -> UNetInputs {
        func gather(_ t: Tensor) -> Tensor {
            let per = t.count / t.shape[0]
            let out = Tensor(uninitializedShape: [indices.count] + t.shape.dropFirst())
            for (k, i) in indices.enumerated() { (out.data + k * per).update(from: t.data + i * per, count: per) }
            return out
        }
        return UNetInputs(sample: gather(xs), timesteps: indices.map { ts[$0] }, encoderHiddenStates: gather(textEmbs),
                          textEmbeds: textEmbeds.map(gather), timeIds: timeIds.map(gather), timestepCond: timestepCond.map(gather))
    }
}
