import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline

/// `mixdq eval`: image quality against reference images (SSIM, PSNR) and, for the synthetic-shapes
/// domain, caption accuracy read from the pixels.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score generated images: SSIM/PSNR against reference images, caption accuracy for synthetic-shapes images.")
    @Option(help: "Folder of generated images (*.png; <i>.png as fp-infer / infer write them).") var images: String
    @Option(help: "Folder of reference images (e.g. FP images), matched by file name.") var reference: String?
    @Option(help: "Synthetic-shapes captions: a text file with one caption per line (line i+1 for <i>.png) or a COCO captions .json.")
    var captions: String?
    @Option(help: "Per-image CSV to write.") var csv: String?
    @Option(help: "SSIM window sides, odd, >= 3 (n/a for images smaller than the window).") var ssimWindows: String = "7,511"

    func validate() throws {
        guard reference != nil || captions != nil else {
            throw ValidationError("nothing to measure: give --reference DIR, --captions FILE or both")
        }
        _ = try windows()
    }

    func windows() throws -> [Int] { try Self.parseWindows(ssimWindows) }

    static func parseWindows(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        return try parts.map { part in
            guard let w = Int(part.trimmingCharacters(in: .whitespaces)), w >= 3, w % 2 == 1, w <= GenerationLimits.maxImageSide else {
                throw ValidationError("--ssim-windows \(text): each window must be an odd integer from 3 to \(GenerationLimits.maxImageSide), found '\(part)'")
            }
            return w
        }
    }

    func run() throws {
        let evaluation = ImageEvaluation(images: URL(fileURLWithPath: images), reference: reference.map { URL(fileURLWithPath: $0) },
                                         captions: captions.map { URL(fileURLWithPath: $0) }, ssimWindows: try windows())
        let report = try evaluation.run()
        print(report.summary)
        if let csv {
            try AtomicFile.write(Data(report.csv.utf8), to: URL(fileURLWithPath: csv))
            print("wrote \(report.rows.count) row(s) to \(csv)")
        }
    }
}
