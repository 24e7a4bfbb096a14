import Foundation
import MixDQCompute
import MixDQIO
import MixDQQuant

/// Content-layer sensitivity (mixdq-method.md §6.2): the mean, over N prompts, of the similarity
/// (SSIM) of the final image with only the target layer quantized to the FP image.
///
/// Images are made the way `fp-infer` / `infer` make them (`TextToImagePipeline.image`: image i
/// from prompt i with seed `seed + i`, each on its own rows), so a score equals `infer` with only
/// that layer quantized followed by the metric. The FP images are generated once into
/// `<work>/fp/<i>.png` (a rerun reuses them), the prompt embeddings once per process.
public final class ContentSensitivity {
    public struct Settings: Equatable, Sendable {
        public var prompts: [String]
        public var seed: UInt64
        public var steps: Int
        public var guidance: Float
        public var height: Int
        public var width: Int
        public init(prompts: [String], seed: UInt64, steps: Int, guidance: Float, height: Int, width: Int) {
            self.prompts = prompts; self.seed = seed; self.steps = steps; self.guidance = guidance
            self.height = height; self.width = width
        }
    }

    public let settings: Settings
    let pipeline: TextToImagePipeline
    let sim: QuantSimulator
    let similarity: (RGBImage, RGBImage) throws -> Double
    let fpImages: [RGBImage]
    let embeddings: [PromptEmbeddings]

    /// `sim` must be installed on `pipeline`'s UNet with quantization off everywhere.
    public init(pipeline: TextToImagePipeline, sim: QuantSimulator, settings: Settings, workFolder: URL, log: RunLog,
                similarity: @escaping (RGBImage, RGBImage) throws -> Double) throws {
        self.pipeline = pipeline; self.sim = sim; self.settings = settings; self.similarity = similarity
        let job = ImageGenerationJob(prompts: settings.prompts, seed: settings.seed, batchSize: 1, steps: settings.steps,
                                     guidance: settings.guidance, height: settings.height, width: settings.width,
                                     folder: workFolder.appendingPathComponent("fp"))
        try job.run(pipeline, log: log)
        fpImages = try settings.prompts.indices.map { try RGBImage.readPNG(job.imageURL($0)) }
        embeddings = try settings.prompts.map { try pipeline.encode([$0]) }
        pipeline.releaseTextEncoders()
    }

    /// `[mean similarity@b for b in bits]` with only `path` quantized (weight-only or act-only).
    public func measure(_ path: String, type: SensitivityType, bits: [Int]) throws -> [Double] {
        guard let layer = sim[path] else { throw SensitivityError("layer '\(path)' is not in the model") }
        let s = settings
        return try bits.map { b in
            try LayerPerturbation.withLayer(layer, type, bits: b) {
                var sum = 0.0
                for (i, embedding) in embeddings.enumerated() {
                    let image = try pipeline.image(embedding, seed: s.seed &+ UInt64(i), steps: s.steps, guidance: s.guidance,
                                                   height: s.height, width: s.width)
                    sum += try similarity(image, fpImages[i])
                }
                return sum / Double(embeddings.count)
            }
        }
    }
}
