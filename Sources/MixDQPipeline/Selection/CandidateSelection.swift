import Foundation
import MixDQIO
import MixDQQuant

/// `mixdq search select` (mixdq-method.md §6.6, made robust): renders every candidate bit config
/// for N prompts through the quantized inference path `infer` uses (`QuantizedInferenceSetup`),
/// the FP images once, compares each candidate image with the FP image of its prompt (SSIM and
/// PSNR in Double) and ranks the candidates by the mean of one metric over all prompts.
///
/// Every input is checked before anything is written (candidate layers and bit widths against the
/// model and the config, the fixed weight config, the act-protect list, the metric window against
/// the image size). Images are cached per candidate under `<work>/images/<name>/` with the
/// settings they were made with (`RenderStamp`), so a rerun renders only what is missing. The
/// chosen config is written last, atomically, after the reports.
public struct CandidateSelection {
    public var kind: SelectionKind
    public var candidates: [SelectionCandidate]
    /// The act phase's fixed weight config (the weight phase's winner).
    public var fixedWeightBits: BitConfig?
    /// Layers kept fully FP in the act phase, and the file they came from.
    public var actProtect: [String]
    public var actProtectSource: String
    public var checkpoint: URL
    public var settings: QuantSettings
    public var backend: BackendChoice
    public var folder: ModelFolder
    public var prompts: [String]
    public var seed: UInt64
    public var steps: Int
    public var guidance: Float
    public var height: Int
    public var width: Int
    public var comparison: ImageComparison
    /// The ratios mean bits are weighted by (the allocation's ratio file); nil: measured on the model.
    public var ratios: LayerRatios?
    public var workDir: URL
    public var output: URL
    /// Prompts (rows) shown in the contact sheet, and the largest side of an image there.
    public var sheetPrompts: Int
    public var sheetCell: Int

    public init(kind: SelectionKind, candidates: [SelectionCandidate], fixedWeightBits: BitConfig?, actProtect: [String],
                actProtectSource: String, checkpoint: URL, settings: QuantSettings, backend: BackendChoice, folder: ModelFolder,
                prompts: [String], seed: UInt64, steps: Int, guidance: Float, height: Int, width: Int, comparison: ImageComparison,
                ratios: LayerRatios?, workDir: URL, output: URL, sheetPrompts: Int = 8, sheetCell: Int = 192) {
        self.kind = kind; self.candidates = candidates; self.fixedWeightBits = fixedWeightBits; self.actProtect = actProtect
        self.actProtectSource = actProtectSource; self.checkpoint = checkpoint; self.settings = settings; self.backend = backend
        self.folder = folder; self.prompts = prompts; self.seed = seed; self.steps = steps; self.guidance = guidance
        self.height = height; self.width = width; self.comparison = comparison; self.ratios = ratios; self.workDir = workDir
        self.output = output; self.sheetPrompts = sheetPrompts; self.sheetCell = sheetCell
    }

    /// What was written.
    public struct Outcome {
        public var report: SelectionReport
        public var chosen: CandidateResult
        public var reportCSV: URL, reportMarkdown: URL, contactSheet: URL, paretoCSV: URL, paretoMarkdown: URL, paretoPlot: URL
    }

    /// The costs of every candidate, computed while checking the inputs.
    public struct Plan {
        var costs: [String: (meanBits: Double, bytes: Double)]
        var ratioSource: String
    }

    public func imageFolder(_ name: String) -> URL { workDir.appendingPathComponent("images").appendingPathComponent(name) }
    static let fpFolderName = "fp"

    /// Renders, measures, ranks and writes; `plan` from `check()` (which writes nothing).
    public func run(_ plan: Plan, log: RunLog) throws -> Outcome {
        try renderAll(log: log)
        var results: [CandidateResult] = []
        let fpImages = prompts.indices.map { imageFolder(Self.fpFolderName).appendingPathComponent("\($0).png") }
        for c in candidates {
            let images = prompts.indices.map { imageFolder(c.name).appendingPathComponent("\($0).png") }
            let cost = plan.costs[c.name] ?? (0, 0)
            results.append(CandidateResult(name: c.name, file: c.url, meanBits: cost.meanBits, bytes: cost.bytes,
                                           scores: try comparison.scores(fp: fpImages, candidate: images)))
        }
        let report = SelectionReport(kind: kind, comparison: comparison, prompts: prompts, results: results, ratioSource: plan.ratioSource)
        guard let chosen = report.chosen else { throw SearchInputError("no candidate to choose from") }
        let outcome = Outcome(report: report, chosen: chosen,
                              reportCSV: workDir.appendingPathComponent("report.csv"), reportMarkdown: workDir.appendingPathComponent("report.md"),
                              contactSheet: workDir.appendingPathComponent("contact_sheet.png"),
                              paretoCSV: workDir.appendingPathComponent("pareto.csv"), paretoMarkdown: workDir.appendingPathComponent("pareto.md"),
                              paretoPlot: workDir.appendingPathComponent("pareto.png"))
        try AtomicFile.write(Data(report.csv.utf8), to: outcome.reportCSV)
        try AtomicFile.write(Data(report.markdown.utf8), to: outcome.reportMarkdown)
        try AtomicFile.write(Data(report.pareto.csv.utf8), to: outcome.paretoCSV)
        try AtomicFile.write(Data(report.pareto.markdown.utf8), to: outcome.paretoMarkdown)
        try contactSheet(report, fpImages: fpImages).render().writePNG(to: outcome.contactSheet)
        try ParetoPlot(report: report.pareto, chosen: chosen.name, title: "mixdq search select: \(kind.rawValue) candidates")
            .render().writePNG(to: outcome.paretoPlot)
        // Last, so that a final config on disk always comes with its reports.
        let chosenBytes: Data
        do { chosenBytes = try Data(contentsOf: chosen.file) } catch {
            throw SearchInputError("\(chosen.file.path): cannot read the chosen candidate (\(FileErrorText.reason(error)))")
        }
        try AtomicFile.write(chosenBytes, to: output)
        log.info("chosen: \(chosen.name) (mean \(comparison.ranking.label) \(ReportFormat.value(chosen.mean(comparison.ranking), comparison.ranking)), mean bits \(ReportFormat.bits(chosen.meanBits))) -> \(output.path)")
        return outcome
    }

    // MARK: Checks before any work

    /// Checks every input against the model and the config, and computes each candidate's costs.
    /// Writes nothing.
    public func check() throws -> Plan {
        guard !prompts.isEmpty else { throw SearchInputError("--prompts: at least one prompt is needed") }
        try comparison.check(width: width, height: height)
        guard !candidates.isEmpty else { throw SearchInputError("no candidate to select from") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: checkpoint.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw SearchInputError("\(checkpoint.path): no quant checkpoint there (--ckpt takes the ptq output folder or its ckpt.safetensors)")
        }
        if try folder.quantizedUNetHeader() != nil {
            throw SearchInputError("\(try folder.component("unet").path): a deployable quantized UNet has fixed bits; selection needs the fp32 UNet")
        }
        let unet = try folder.loadUNet()
        let paths = unet.layers.map(\.path)
        let parameters = TensorRatioMeasurement.ratios(TensorRatioMeasurement.parameterCounts(unet), source: "the UNet's parameter counts")
        let ratios: LayerRatios
        let ratioSource: String
        if let given = self.ratios {
            ratios = given; ratioSource = given.source
        } else if kind == .weight {
            ratios = TensorRatioMeasurement.ratios(try TensorRatioMeasurement.weightRatios(unet), source: "weight ratios of the model")
            ratioSource = "weight elements / conv_in's, measured on the model"
        } else {
            ratios = TensorRatioMeasurement.ratios(try TensorRatioMeasurement.activationRatios(unet, height: height, width: width),
                                                   source: "act ratios of the model")
            ratioSource = "input elements per sample at \(width)x\(height) / 320, measured on the model"
        }

        let known = Set(paths)
        let unknownProtect = actProtect.filter { !known.contains($0) }
        if !unknownProtect.isEmpty {
            throw SearchInputError("\(actProtectSource): \(unknownProtect.count) unknown layer name(s): \(SearchInputError.list(unknownProtect))")
        }
        let protected = Set(actProtect)
        if let fixedWeightBits { try checkBits(fixedWeightBits, paths: paths, exempt: []) }
        var costs: [String: (meanBits: Double, bytes: Double)] = [:]
        for c in candidates {
            switch kind {
            case .weight:
                try checkBits(c.bits, paths: paths, exempt: [])
                costs[c.name] = (try CandidateFootprint.meanBits(c.bits, ratios: ratios),
                                 try CandidateFootprint.weightBytes(c.bits, parameters: parameters))
            case .act:
                guard let weights = fixedWeightBits else { throw SearchInputError("act selection needs the fixed weight config (--config-weight-mp)") }
                try checkBits(c.bits, paths: paths, exempt: protected)
                costs[c.name] = (try CandidateFootprint.meanBits(c.bits, ratios: ratios, excluding: protected),
                                 try CandidateFootprint.weightBytes(weights, parameters: parameters, fpLayers: protected))
            }
        }
        return Plan(costs: costs, ratioSource: ratioSource)
    }

    /// A bit config `infer` would accept: known layers, calibrated bit widths, every layer named (but `exempt`).
    func checkBits(_ config: BitConfig, paths: [String], exempt: Set<String>) throws {
        let known = Set(paths)
        let unknown = config.bits.keys.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw SearchInputError("\(config.source): \(unknown.count) unknown layer name(s), not in the model's UNet: \(SearchInputError.list(unknown))")
        }
        let uncalibrated = config.bits.filter { !settings.bitWidths.contains($0.value) }.sorted { $0.key < $1.key }
        if let first = uncalibrated.first {
            throw SearchInputError("\(config.source): \(uncalibrated.count) layer(s) use bit widths without calibrated parameters (the config's mixed_precision: \(settings.bitWidths.map(String.init).joined(separator: ", "))), e.g. \(first.key): \(first.value)")
        }
        try config.checkCovers(paths, except: exempt)
    }

    // MARK: Rendering

    func job(_ name: String) -> ImageGenerationJob {
        ImageGenerationJob(prompts: prompts, seed: seed, batchSize: 4, steps: steps, guidance: guidance, height: height, width: width,
                           folder: imageFolder(name))
    }

    /// The settings every image folder shares, then the ones of the candidate (nil: FP).
    func stamp(_ candidate: SelectionCandidate?) throws -> RenderStamp {
        var entries: [(String, String)] = [
            ("model", folder.root.path), ("unet", folder.unetOverride?.path ?? "the model's"),
            ("prompts", RenderStamp.fingerprint(of: Data(prompts.joined(separator: "\n").utf8)) + " (\(prompts.count))"),
            ("seed", "\(seed)"), ("steps", "\(steps)"), ("guidance", "\(guidance)"), ("size", "\(width)x\(height)"),
        ]
        guard let candidate else { return RenderStamp(entries + [("quantization", "none (FP)")]) }
        entries += [
            ("checkpoint", try RenderStamp.fileIdentity(checkpoint)),
            ("backend", backend.rawValue),
            ("bits", try RenderStamp.fingerprint(of: candidate.url)),
            ("activations", kind == .weight ? "off (weight phase)" : "quantized"),
        ]
        if let fixedWeightBits { entries.append(("weight bits", try RenderStamp.fingerprint(of: URL(fileURLWithPath: fixedWeightBits.source)))) }
        if !actProtect.isEmpty { entries.append(("act-protect", actProtect.sorted().joined(separator: " "))) }
        return RenderStamp(entries)
    }

    func setup(_ candidate: SelectionCandidate) -> QuantizedInferenceSetup {
        var setup = QuantizedInferenceSetup(
            checkpoint: checkpoint, settings: settings,
            weightBits: kind == .weight ? candidate.bits : fixedWeightBits,
            activationBits: kind == .act ? candidate.bits : nil,
            actProtect: kind == .act ? actProtect : [],
            quantizeWeights: true, quantizeActivations: kind == .act)
        setup.actProtectSource = actProtectSource
        setup.backend = backend
        return setup
    }

    /// FP images first, then every candidate's; only missing images are made. Progress with ETA over all of them.
    func renderAll(log: RunLog) throws {
        let names = [Self.fpFolderName] + candidates.map(\.name)
        let stamps = try [stamp(nil)] + candidates.map { try stamp($0) }
        for (name, stamp) in zip(names, stamps) { try stamp.claim(imageFolder(name)) }
        let pending = names.map { job($0).pending.count }
        let total = pending.reduce(0, +)
        log.info("search select (\(kind.rawValue)): \(candidates.count) candidate(s) x \(prompts.count) prompt(s); \(total) image(s) to render, \(names.count * prompts.count - total) cached under \(workDir.appendingPathComponent("images").path)")
        var meter = ProgressMeter(total: total, label: "selection images")
        for (i, name) in names.enumerated() where pending[i] > 0 {
            let pipeline = try TextToImagePipeline(folder: folder)
            if i > 0 {
                let s = setup(candidates[i - 1])
                pipeline.configureUNet = { unet in try s.deploy(to: unet, log: log) }
            }
            log.info("rendering \(name) (\(pending[i]) image(s))")
            let made = try job(name).run(pipeline, log: log)
            log.info(meter.advance(by: made))
        }
    }

    func contactSheet(_ report: SelectionReport, fpImages: [URL]) -> ContactSheet {
        let rows = min(sheetPrompts, prompts.count)
        let metric = comparison.ranking
        var columns = [ContactSheet.Column(title: "FP", details: ["reference"], images: Array(fpImages.prefix(rows)),
                                           captions: Array(repeating: "", count: rows))]
        for r in report.ranked {
            columns.append(ContactSheet.Column(
                title: r.name,
                details: ["\(String(format: "%.2f", r.meanBits)) bits, \(ReportFormat.megabytes(r.bytes))", "mean \(metric.label) \(ReportFormat.value(r.mean(metric), metric))"],
                images: prompts.indices.prefix(rows).map { imageFolder(r.name).appendingPathComponent("\($0).png") },
                captions: r.scores.prefix(rows).map { "\(metric.label) \(ReportFormat.value($0.value(metric), metric))" }))
        }
        let title = ["mixdq search select (\(kind.rawValue))",
                     "FP and \(report.ranked.count) candidate(s), best first by mean \(metric.label)"
                        + (metric == .ssim ? " (window \(comparison.ssimWindow))" : "") + "; prompts #0-#\(rows - 1) of \(prompts.count)"]
        return ContactSheet(title: title, columns: columns, imageWidth: width, imageHeight: height, cellSide: sheetCell)
    }
}
