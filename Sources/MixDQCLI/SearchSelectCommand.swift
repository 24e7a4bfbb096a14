import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline
import MixDQQuant

extension ImageComparison.Metric: ExpressibleByArgument {}
extension SelectionKind: ExpressibleByArgument {}

/// `mixdq search select`: the original's quant_inference_mp.py made robust (mixdq-method.md §6.6):
/// every candidate of a scan folder rendered for N prompts as `infer` renders, ranked by mean SSIM
/// or PSNR against the FP images; writes the chosen config, the reports, a contact sheet and the
/// Pareto table and plot.
struct SearchSelectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "select",
        abstract: "Render every candidate bit config for N prompts, rank by SSIM/PSNR against FP images, write the best (final_weight_mp.yaml / final_act_mp.yaml) with reports.",
        discussion: """
            weight: candidates weight_*.yaml, activations unquantized (the original's weight phase). act: candidates act_*.yaml \
            under the fixed --config-weight-mp, --act-protect layers fully FP. Reports, contact sheet, Pareto table and plot, and \
            the cached images go to --work-dir (default: <folder of --out>/select_<type>); a rerun renders only missing images.
            """)
    @Option(help: "weight or act: which candidates (weight_*.yaml / act_*.yaml) and phase.") var type: SelectionKind
    @Option(help: "Folder of candidate bit configs (what `mixdq search allocate-scan` writes).") var dir: String
    @Option(help: "The fixed weight config of the act phase (the weight phase's final_weight_mp.yaml).") var configWeightMp: String?
    @Option(help: "Layers kept fully FP in the act phase (`mixdq search protect`'s YAML, or the original's .pt).") var actProtect: String?
    @Option(parsing: .unconditional, help: "Number of prompts (the first N COCO captions).") var prompts: Int
    @Option(help: "Output: the chosen candidate's bit config.") var out: String
    @Option(help: "The ptq output folder (ckpt.safetensors, config.yaml) or the checkpoint file itself.") var ckpt: String
    @Option(help: "ssim or psnr: the metric that ranks.") var metric: ImageComparison.Metric = .ssim
    @Option(parsing: .unconditional, help: "SSIM window (odd, >= 3): 7 standard, 511 the original's (needs images of at least 511 pixels).") var ssimWindow = 7
    @Option(help: "Tensor-ratio YAML the mean bits are weighted by (the allocation's); default: measured on the model.") var ratio: String?
    @Option(help: "Prompts: a COCO captions_val2014.json-format file, or a text file with one prompt per line. Default: calib_data.captions or the shipped captions.") var captions: String?
    @Option(parsing: .unconditional, help: "Image i uses seed + i.") var seed: UInt64 = 42
    @Option(parsing: .unconditional, help: "Image height (default: the UNet's sample_size * 8).") var height: Int?
    @Option(parsing: .unconditional, help: "Image width (default: the UNet's sample_size * 8).") var width: Int?
    @Option(help: "Quantized execution, as infer: int8, fake, auto or cuda.") var backend: BackendChoice = .automatic
    @Option(help: "Folder for cached images, reports, contact sheet and Pareto plot (default: <folder of --out>/select_<type>).") var workDir: String?
    @Option(parsing: .unconditional, help: "Prompts shown in the contact sheet (1...64).") var sheetPrompts = 8
    @Option(parsing: .unconditional, help: "Largest side of an image in the contact sheet, pixels (16...1024).") var sheetCell = 192
    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        if let p = GenerationLimits.countProblem(prompts, max: GenerationLimits.maxImages) { throw ValidationError("--prompts \(p)") }
        if seed > UInt64.max - UInt64(prompts - 1) { throw ValidationError("--seed \(seed) + --prompts \(prompts) - 1 exceeds the largest seed, 2^64 - 1") }
        if let h = height, let p = GenerationLimits.imageSideProblem(h) { throw ValidationError("--height \(p)") }
        if let w = width, let p = GenerationLimits.imageSideProblem(w) { throw ValidationError("--width \(p)") }
        guard ssimWindow >= 3, ssimWindow % 2 == 1 else { throw ValidationError("--ssim-window \(ssimWindow): expected an odd window of at least 3 (7 standard, 511 the original's)") }
        guard (1...64).contains(sheetPrompts) else { throw ValidationError("--sheet-prompts \(sheetPrompts): expected 1...64") }
        guard (16...1024).contains(sheetCell) else { throw ValidationError("--sheet-cell \(sheetCell): expected 16...1024") }
        if modelOptions.precision != .fp32 { throw ValidationError("candidates are rendered as infer renders them, in fp32; --precision bf16 applies to fp-infer") }
        switch type {
        case .weight:
            if configWeightMp != nil { throw ValidationError("--config-weight-mp applies to --type act (the weight phase chooses the weight config)") }
            if actProtect != nil { throw ValidationError("--act-protect applies to --type act (the weight phase runs activations unquantized)") }
        case .act:
            if configWeightMp == nil { throw ValidationError("--type act needs --config-weight-mp (the weight phase's final_weight_mp.yaml)") }
        }
    }

    func run() throws {
        let checkpoint = CheckpointArgument.file(ckpt)
        let mixdqConfig = try modelOptions.loadConfig(basePath: checkpoint.deletingLastPathComponent())
        let folder = try modelOptions.resolveModel(mixdqConfig, log: nil)
        let pipeline = try TextToImagePipeline(folder: folder)
        let size = try pipeline.defaultSize
        let (h, w) = (height ?? size, width ?? size)
        if let p = GenerationLimits.imageSideProblem(h) { throw CommandError("image height \(p); pass --height") }
        if let p = GenerationLimits.imageSideProblem(w) { throw CommandError("image width \(p); pass --width") }
        let guidance = Float(mixdqConfig.calibData.scaleValue)
        guard guidance.isFinite else { throw CommandError("\(mixdqConfig.sourceURL?.path ?? "config"): 'calib_data.scale_value' does not fit a finite Float") }

        let captionsURL = try captions.map { URL(fileURLWithPath: $0) } ?? mixdqConfig.captionsURL()
        let all = try PromptFile.load(captionsURL)
        guard all.count >= prompts else { throw CommandError("\(captionsURL.path): holds \(all.count) captions, --prompts asks for \(prompts)") }

        let outURL = URL(fileURLWithPath: out)
        let work = workDir.map { URL(fileURLWithPath: $0) } ?? outURL.deletingLastPathComponent().appendingPathComponent("select_\(type.rawValue)")
        let selection = CandidateSelection(
            kind: type, candidates: try SelectionCandidate.load(folder: URL(fileURLWithPath: dir), kind: type),
            fixedWeightBits: try configWeightMp.map { try BitConfig.load(URL(fileURLWithPath: $0)) },
            actProtect: try actProtect.map { try BitConfig.loadLayerList(URL(fileURLWithPath: $0)) } ?? [],
            actProtectSource: actProtect ?? "the act-protect list",
            checkpoint: checkpoint, settings: try QuantSettings(mixdqConfig), backend: backend, folder: folder,
            prompts: Array(all.prefix(prompts)), seed: seed, steps: mixdqConfig.calibData.nSteps, guidance: guidance,
            height: h, width: w, comparison: ImageComparison(ranking: metric, ssimWindow: ssimWindow),
            ratios: try ratio.map { try LayerRatios.load(URL(fileURLWithPath: $0)) }, workDir: work, output: outURL,
            sheetPrompts: sheetPrompts, sheetCell: sheetCell)
        // Everything is checked before the log (and with it the work folder) is created.
        let plan = try selection.check()
        let log = try RunLog(work.appendingPathComponent("run.log"))
        try log.record("mixdq search select --type \(type.rawValue): \(selection.candidates.count) candidate(s) from \(dir), checkpoint \(checkpoint.path), \(prompts) prompt(s), ranked by \(metric.label)\(metric == .ssim ? " (window \(ssimWindow))" : "")")
        let outcome = try selection.run(plan, log: log)
        try log.check()
        let r = outcome.report
        func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return right ? fill + s : s + fill
        }
        print([pad("rank", 5), pad("candidate", 28), pad("mean bits", 10, right: true), pad("model bytes", 14, right: true),
               pad("mean SSIM", 11, right: true), pad("mean PSNR", 11, right: true)].joined(separator: " "))
        for (i, c) in r.ranked.enumerated() {
            print([pad("\(i + 1)", 5), pad(c.name, 28), pad(String(format: "%.4f", c.meanBits), 10, right: true),
                   pad(String(format: "%.0f", c.bytes), 14, right: true), pad(String(format: "%.6f", c.mean(.ssim)), 11, right: true),
                   pad(String(format: "%.4f", c.mean(.psnr)), 11, right: true)].joined(separator: " ")
                  + (r.pareto.isOptimal(c.name) ? "  Pareto-optimal" : ""))
        }
        print("chosen: \(outcome.chosen.name) -> \(out)")
        print("reports: \(outcome.reportMarkdown.path), \(outcome.reportCSV.path); contact sheet: \(outcome.contactSheet.path); Pareto: \(outcome.paretoMarkdown.path), \(outcome.paretoPlot.path)")
    }
}
