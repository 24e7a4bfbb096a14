import Foundation
import MixDQCompute
import MixDQIO

/// Batch text-to-image generation into `<folder>/<index>.png`, the way fp-infer and infer run it.
///
/// Scale-out and restarts: `shard` keeps the indices `i` with `i % count == index`, so N machines
/// (a Slurm array, Kubernetes jobs) split one prompt list; an image that already exists is skipped,
/// so a rerun resumes. Image i always uses seed `seed + i` (see `BatchNoise`), so the result does
/// not depend on batching, sharding or resuming.
public struct ImageGenerationJob {
    /// The shard type that used to live here (kept as a name for callers).
    public typealias Shard = MixDQPipeline.Shard

    public var prompts: [String]
    public var seed: UInt64
    public var batchSize: Int
    public var steps: Int
    public var guidance: Float
    public var height: Int
    public var width: Int
    public var folder: URL
    public var shard: Shard
    /// Free the UNet before the last image's decode (for a process that ends with the job, as the
    /// CLI's): a one-image run then peaks at the larger of the UNet and the VAE decode, not their sum.
    public var releasesUNetBeforeLastDecode = false

    public init(prompts: [String], seed: UInt64, batchSize: Int, steps: Int, guidance: Float, height: Int, width: Int,
                folder: URL, shard: Shard = .whole) {
        self.prompts = prompts; self.seed = seed; self.batchSize = batchSize; self.steps = steps; self.guidance = guidance
        self.height = height; self.width = width; self.folder = folder; self.shard = shard
    }

    public func imageURL(_ index: Int) -> URL { folder.appendingPathComponent("\(index).png") }

    /// The prompt indices this shard owns, done or not.
    public var ownedIndices: [Int] { prompts.indices.filter { shard.owns($0) } }

    /// `pipeline.planConvolutions` for this job's settings and `images` images.
    @discardableResult
    public func planConvolutions(_ pipeline: TextToImagePipeline, images: Int) -> String {
        pipeline.planConvolutions(images: images, steps: steps, guidance: guidance, height: height, width: width)
    }

    /// Indices this shard owns that have no complete image yet. An existing `<i>.png` counts
    /// only if it decodes as a whole PNG of this job's size (a 0-byte or cut-off file from a
    /// crash, or an image of another size, is made again; stderr says which and why).
    public var pending: [Int] {
        prompts.indices.filter { i in
            guard shard.owns(i) else { return false }
            switch existingImage(i) {
            case .complete: return false
            case .absent: return true
            case let .unusable(problem):
                StandardError.write("note: \(imageURL(i).path): \(problem); image \(i) will be generated again\n")
                return true
            }
        }
    }

    @discardableResult
    public func run(_ pipeline: TextToImagePipeline, log: RunLog) throws -> Int {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw RunLogError(path: folder.path, reason: "cannot create the image folder (\(FileErrorText.reason(error)))")
        }
        guard FileManager.default.isWritableFile(atPath: folder.path) else {
            throw RunLogError(path: folder.path, reason: "image folder is not writable")
        }
        let todo = pending
        let owned = ownedIndices.count
        log.info("generating \(todo.count) image(s) (\(owned - todo.count) of this shard's \(owned) already present) into \(folder.path); shard \(shard.index)/\(shard.count), \(steps) step(s), guidance \(guidance), \(width)x\(height), seed \(seed)+index")
        guard !todo.isEmpty else { return 0 }
        log.info(planConvolutions(pipeline, images: todo.count))

        // Encode every prompt first so the text encoders can be freed before the UNet loads. One
        // prompt per call: a prompt's embedding then never depends on which prompts share its batch.
        var embeddings: [Int: PromptEmbeddings] = [:]
        for i in todo { embeddings[i] = try pipeline.encode([prompts[i]]) }
        pipeline.releaseTextEncoders()

        // `batchSize` groups images for progress reports; each image is computed on its own rows
        // (see `TextToImagePipeline.image`), so its bytes do not depend on the grouping.
        var meter = ProgressMeter(total: todo.count, label: "images")
        for start in stride(from: 0, to: todo.count, by: batchSize) {
            let idx = Array(todo[start..<min(start + batchSize, todo.count)])
            for i in idx {
                guard let embedding = embeddings.removeValue(forKey: i) else { continue }
                let image: RGBImage
                do {
                    image = try pipeline.image(embedding, seed: seed &+ UInt64(i), steps: steps, guidance: guidance,
                                               height: height, width: width,
                                               releasingUNet: releasesUNetBeforeLastDecode && i == todo.last)
                } catch let error as NonFiniteValuesError {
                    throw ImageGenerationError(index: i, url: imageURL(i), reason: error.description)
                }
                try image.writePNG(to: imageURL(i))
            }
            log.info(meter.advance(by: idx.count))
        }
        return todo.count
    }
}

/// An image that could not be produced; nothing is written under its name.
public struct ImageGenerationError: Error, CustomStringConvertible, LocalizedError {
    public let index: Int
    public let url: URL
    public let reason: String
    public var description: String { "image \(index) (\(url.path)): \(reason); no image written" }
    public var errorDescription: String? { description }
}

// MARK: Resume: which existing images count as done

extension ImageGenerationJob {
    /// What is at `<i>.png` before a run.
    public enum ExistingImage: Equatable {
        case absent
        case complete
        /// Present but not a usable result (the reason, for the log).
        case unusable(String)
    }

    /// Decodes `<i>.png` fully (libpng checks every chunk's CRC and the data's end) and checks
    /// its size. Anything that is not a regular file is `.absent`: writing the image names it.
    public func existingImage(_ index: Int) -> ExistingImage {
        let url = imageURL(index)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return .absent
        }
        do {
            let size = try RGBImage.pngSize(url)
            guard size.width == width && size.height == height else {
                return .unusable("is \(size.width)x\(size.height), this run makes \(width)x\(height)")
            }
            _ = try RGBImage.readPNG(url)
            return .complete
        } catch let error as PNGError {
            return .unusable(error.message)
        } catch {
            return .unusable("\(error)")
        }
    }
}
