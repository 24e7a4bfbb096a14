import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline

/// `mixdq search run`: the whole search (mixdq-method.md §6) on a ptq checkpoint in one command,
/// as the original's mixed_precision_scripts chain it and `scripts/main_search.sh` does stage by
/// stage: sensitivity (weight/act × content/quality) → act protection → tensor ratios → weight
/// (a, k) scan → weight selection → act scan under the protect list → act selection → final images.
/// Each stage runs the same subcommand in-process; `search_run.json` records every finished stage,
/// and a rerun skips the stages whose arguments, inputs and outputs are unchanged (sensitivity and
/// selection also resume inside a stage, from their journal and image cache).
struct SearchRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "The whole search on a ptq checkpoint: sensitivity, protect, ratios, weight and act scans and selections, final images; resumable at every stage.",
        discussion: """
            Writes into --out (default <ptq folder>/search): sensitivity_{weight,act}_{content,quality}.yaml, act_protect.yaml, \
            ratio_{weight,act}.yaml, candidates_{weight,act}/, final_weight_mp.yaml, final_act_mp.yaml (with select_{weight,act}/ \
            reports), final_images/, search_run.json (the stage record) and search_run.log.
            """)
    @Option(help: "The ptq output folder (ckpt.safetensors, config.yaml), or the checkpoint file.") var ckpt: String
    @Option(parsing: .unconditional, help: "Weight target: ratio-weighted mean bits of the weight scan (the original: 5).") var weightTarget = 5.0
    @Option(parsing: .unconditional, help: "Activation target (the original: 7.7).") var actTarget = 7.7
    @Option(help: "Output folder (default: <ptq folder>/search).") var out: String?
    @Option(parsing: .unconditional, help: "Sensitivity: the first N captions for the SSIM of content layers.") var prompts = 32
    @Option(parsing: .unconditional, help: "Selection: prompts per candidate.") var selectPrompts = 8
    @Option(parsing: .unconditional, help: "Sensitivity SSIM window (default: 511 as the original where the images are at least 511 pixels, else 7).")
    var ssimWindow: Int?
    @Option(parsing: .unconditional, help: "Weight scan: number of a values (allocate-scan --a-scan).") var weightAScan = 10
    @Option(help: "Weight scan: k as lo,hi,n (default 0.46,1.36,10).") var weightKScan = "0.46,1.36,10"
    @Option(parsing: .unconditional, help: "Act scan: number of a values.") var actAScan = 10
    @Option(help: "Act scan: k as lo,hi,n (default 0.94,1.09,20).") var actKScan = "0.94,1.09,20"
    @Option(parsing: .unconditional, help: "Seconds GLPK may take per programme (default: no limit).") var timeLimit: Double?
    @Option(parsing: .unconditional, help: "Images of the final configs (the original's final_mixed_precision_infer; default 8); 0 skips the stage.")
    var finalImages: Int?
    @Option(parsing: .unconditional, help: "Sensitivity: memory for FP activations cached at stage boundaries (MiB).") var cacheMib = 4096
    @Flag(help: "Only the weight phase (the original's first pass): weight sensitivity, ratios, scan and selection; activations unquantized.")
    var weightOnly = false
    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        for (flag, v) in [("--weight-target", weightTarget), ("--act-target", actTarget)] { try SearchInputs.finite(v, flag: flag) }
        if let p = GenerationLimits.countProblem(prompts, max: GenerationLimits.maxImages) { throw ValidationError("--prompts \(p)") }
        if let p = GenerationLimits.countProblem(selectPrompts, max: GenerationLimits.maxImages) { throw ValidationError("--select-prompts \(p)") }
        if let finalImages, !(0...GenerationLimits.maxImages).contains(finalImages) {
            throw ValidationError("--final-images \(finalImages): expected 0...\(GenerationLimits.maxImages)")
        }
        for (flag, text, a) in [("--weight-k-scan", weightKScan, weightAScan), ("--act-k-scan", actKScan, actAScan)] {
            let k = try SearchAllocateScanCommand.kGrid(text, flag: flag)
            guard (1...1000).contains(a), k.count * a <= SearchAllocateScanCommand.maxGridPoints else {
                throw ValidationError("\(flag.replacingOccurrences(of: "k-scan", with: "a-scan")) \(a) × \(flag) \(text): expected 1...1000 a values and at most \(SearchAllocateScanCommand.maxGridPoints) grid points")
            }
        }
        if let timeLimit { try SearchInputs.finite(timeLimit, flag: "--time-limit") }
        if let ssimWindow, ssimWindow < 3 || ssimWindow % 2 == 0 { throw ValidationError("--ssim-window \(ssimWindow): must be odd and at least 3") }
        if modelOptions.precision != .fp32 { throw ValidationError("the search simulates quantization in fp32; drop --precision") }
        if weightOnly, finalImages != nil { throw ValidationError("--final-images renders the final weight and act configs; --weight-only has no act config") }
    }

    func run() throws {
        let checkpoint = CheckpointArgument.file(ckpt)
        guard FileManager.default.fileExists(atPath: checkpoint.path) else {
            throw CommandError("--ckpt \(ckpt): no checkpoint at \(checkpoint.path) (give a ptq output folder or its ckpt.safetensors)")
        }
        let ptqFolder = checkpoint.deletingLastPathComponent()
        let config = try modelOptions.loadConfig(basePath: ptqFolder)
        let folder = try modelOptions.resolveModel(config, log: nil)
        let pipeline = try TextToImagePipeline(folder: folder)
        let size = try pipeline.defaultSize
        let (height, width) = (config.calibData.height ?? size, config.calibData.width ?? size)
        let window = ssimWindow ?? (min(height, width) >= 511 ? 511 : 7)

        let outDir = out.map { URL(fileURLWithPath: $0) } ?? ptqFolder.appendingPathComponent("search")
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        let log = try RunLog(outDir.appendingPathComponent("search_run.log"))
        try log.record("mixdq search run: \(checkpoint.path), weight target \(weightTarget), act target \(actTarget), \(height)x\(width) images, SSIM window \(window)\(ssimWindow == nil ? " (default for this image size)" : "") -> \(outDir.path)")

        let stages = plan(checkpoint: checkpoint, ptqFolder: ptqFolder, model: folder.root, config: config.sourceURL,
                          calibration: config.calibData.url, captions: try config.captionsURL(),
                          outDir: outDir, height: height, width: width, window: window)
        let manifestURL = outDir.appendingPathComponent(SearchRunManifest.fileName)
        var manifest = try SearchRunManifest.load(manifestURL)
        // A stage after one that ran again is judged by its own inputs' content: unchanged inputs skip it.
        for (i, stage) in stages.enumerated() {
            let label = "stage \(i + 1)/\(stages.count) \(stage.name)"
            guard let reason = stage.reasonToRun(manifest) else {
                log.info("\(label): done before with the same arguments and inputs; skipped")
                continue
            }
            log.info("\(label): running (\(reason))")
            manifest.stages[stage.name] = nil
            try manifest.write(manifestURL)
            try stage.run()
            manifest.stages[stage.name] = try stage.record(outputsToo: true)
            try manifest.write(manifestURL)
        }
        if weightOnly {
            log.info("weight search complete: \(outDir.appendingPathComponent("final_weight_mp.yaml").path)")
        } else {
            let final = outDir.appendingPathComponent("final_weight_mp.yaml").path + ", " + outDir.appendingPathComponent("final_act_mp.yaml").path
            log.info("search complete: \(final) with the act-protect list \(outDir.appendingPathComponent("act_protect.yaml").path)")
        }
        try log.check()
    }

    /// The stages of the original's scripts, in order, with the files each reads and writes.
    func plan(checkpoint: URL, ptqFolder: URL, model: URL, config: URL?, calibration: URL, captions: URL, outDir: URL,
              height: Int, width: Int, window: Int) -> [SearchRunStage] {
        func file(_ name: String) -> URL { outDir.appendingPathComponent(name) }
        // Every stage that builds a pipeline sees the same model, config and LoRA as this command.
        var modelArgs = ["--model", model.path]
        if let config { modelArgs += ["--config", config.path] }
        if let unet = modelOptions.unet { modelArgs += ["--unet", unet] }
        if let lora = modelOptions.lora { modelArgs += ["--lora", lora, "--lora-scale", "\(modelOptions.loraScale)"] }
        let configInputs = config.map { [$0] } ?? []
        let ckptArgs = ["--ckpt", checkpoint.path] + modelArgs
        var stages: [SearchRunStage] = []

        // 1. Sensitivity (get_sensitivity.sh).
        for type in ["weight", "act"] {
            for group in ["content", "quality"] {
                let output = file("sensitivity_\(type)_\(group).yaml")
                var args = ["search", "sensitivity"] + ckptArgs + ["--type", type, "--group", group, "--out", output.path,
                                                                   "--cache-mib", "\(cacheMib)"]
                if group == "content" { args += ["--prompts", "\(prompts)", "--ssim-window", "\(window)"] }
                // SSIM reads the captions; SQNR the calibration file's stored outputs.
                stages.append(.init(name: "sensitivity \(type) \(group)", arguments: args,
                                    inputs: configInputs + (group == "content" ? [captions] : []),
                                    largeInputs: [checkpoint] + (group == "quality" ? [calibration] : []),
                                    outputs: [output], staleState: [URL(fileURLWithPath: output.path + ".journal"),
                                                                    URL(fileURLWithPath: output.path + ".work")]))
            }
        }
        // 2. Act protection.
        let protect = file("act_protect.yaml")
        stages.append(.init(name: "protect", arguments: ["search", "protect", "--sensitivity-content", file("sensitivity_act_content.yaml").path,
                                                         "--sensitivity-quality", file("sensitivity_act_quality.yaml").path,
                                                         "--model", model.path, "--out", protect.path],
                            inputs: [file("sensitivity_act_content.yaml"), file("sensitivity_act_quality.yaml")], largeInputs: [],
                            outputs: [protect], staleState: []))
        // 3. Tensor ratios, measured on the model (act ratios at the image size of the search).
        for type in ["weight", "act"] {
            let output = file("ratio_\(type).yaml")
            var args = ["search", "ratios", "--model", model.path, "--type", type, "--out", output.path]
            if type == "act" { args += ["--height", "\(height)", "--width", "\(width)"] }
            stages.append(.init(name: "ratios \(type)", arguments: args, inputs: [], largeInputs: [], outputs: [output], staleState: []))
        }
        // 4-5. Weights, then activations under the chosen weights with the protected layers left out.
        var previous: [URL] = []
        for (type, target, aScan, kScan) in [("weight", weightTarget, weightAScan, weightKScan), ("act", actTarget, actAScan, actKScan)] {
            let candidates = file("candidates_\(type)")
            let scores = [file("sensitivity_\(type)_content.yaml"), file("sensitivity_\(type)_quality.yaml")]
            var scan = ["search", "allocate-scan", "--type", type, "--target", "\(target)", "--a-scan", "\(aScan)", "--k-scan", kScan,
                        "--content-scores", scores[0].path, "--quality-scores", scores[1].path,
                        "--ratio", file("ratio_\(type).yaml").path, "--out", candidates.path]
            var scanInputs = scores + [file("ratio_\(type).yaml")]
            if type == "act" {
                scan += ["--exclude", protect.path]
                scanInputs.append(protect)
            }
            if let timeLimit { scan += ["--time-limit", "\(timeLimit)"] }
            stages.append(.init(name: "allocate-scan \(type)", arguments: scan, inputs: scanInputs, largeInputs: [],
                                outputs: [candidates], staleState: [candidates]))

            let chosen = file("final_\(type)_mp.yaml")
            var select = ["search", "select", "--type", type, "--dir", candidates.path, "--prompts", "\(selectPrompts)",
                          "--ratio", file("ratio_\(type).yaml").path] + ckptArgs + ["--out", chosen.path]
            if type == "act" { select += ["--config-weight-mp", previous[0].path, "--act-protect", protect.path] }
            stages.append(.init(name: "select \(type)", arguments: select,
                                inputs: [candidates, file("ratio_\(type).yaml"), captions] + previous + (type == "act" ? [protect] : []) + configInputs,
                                largeInputs: [checkpoint], outputs: [chosen], staleState: [file("select_\(type)")]))
            previous = [chosen]
        }
        // 6. Final images (final_mixed_precision_infer.sh).
        let finalImages = self.finalImages ?? 8
        if finalImages > 0 {
            let images = file("final_images")
            let weights = file("final_weight_mp.yaml"), acts = file("final_act_mp.yaml")
            stages.append(.init(
                name: "final images",
                arguments: ["infer", "--base-path", ptqFolder.path] + ckptArgs
                    + ["--config-weight-mp", weights.path, "--config-act-mp", acts.path, "--act-protect", protect.path,
                       "--image-folder", images.path, "--num-imgs", "\(finalImages)", "--batch-size", "\(min(finalImages, 2))"],
                inputs: [weights, acts, protect] + configInputs, largeInputs: [checkpoint], outputs: [images], staleState: [images]))
        }
        // The weight phase needs neither the act sensitivities nor the protect list.
        if weightOnly {
            let weightStages: Set = ["sensitivity weight content", "sensitivity weight quality", "ratios weight", "allocate-scan weight", "select weight"]
            return stages.filter { weightStages.contains($0.name) }
        }
        return stages
    }
}
