import Foundation
import MixDQIO

/// Issue 10's quality table: several settings (W8A8, W4A16, a searched config ...) each rendered
/// with the same seeds as the FP images, scored against FP (SSIM, PSNR) and against the captions
/// (the synthetic-shapes checker), one line per setting, pooled over the seeds.
public struct QualityTable {
    /// A setting's image folders, one per seed, in the same seed order as the reference's.
    public struct Setting: Sendable {
        public var name: String
        public var folders: [URL]
        public init(name: String, folders: [URL]) { self.name = name; self.folders = folders }

        /// `NAME=DIR[,DIR...]` as the command line gives it.
        public static func parse(_ text: String, option: String) throws -> Setting {
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw EvaluationInputError(path: option, message: "'\(text)' is not NAME=DIR[,DIR...]")
            }
            let folders = text[text.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false)
            guard !folders.isEmpty, folders.allSatisfy({ !$0.isEmpty }) else {
                throw EvaluationInputError(path: option, message: "'\(text)' names an empty folder")
            }
            return Setting(name: String(text[..<equals]), folders: folders.map { URL(fileURLWithPath: String($0)) })
        }
    }

    /// One line of the table: the pooled report of a setting over every seed.
    public struct Line: Sendable {
        public let name: String
        public let report: EvaluationReport
        /// The first seed's report (the contact sheet shows that seed).
        public let firstSeed: EvaluationReport
    }

    public let reference: Setting
    public let settings: [Setting]
    public let captions: URL?
    public let ssimWindows: [Int]

    public init(reference: Setting, settings: [Setting], captions: URL?, ssimWindows: [Int] = ImageEvaluation.defaultSSIMWindows) {
        self.reference = reference; self.settings = settings; self.captions = captions; self.ssimWindows = ssimWindows
    }

    /// The reference line (captions only) first, then each setting against the reference.
    public func run() throws -> [Line] {
        var lines: [Line] = []
        if captions != nil {
            let reports = try reference.folders.map {
                try ImageEvaluation(images: $0, reference: nil, captions: captions, ssimWindows: ssimWindows).run()
            }
            lines.append(Line(name: reference.name, report: Self.pooled(reports), firstSeed: reports[0]))
        }
        // Listed once: every setting's seed k must hold as many images as the reference's.
        let referenceCounts = settings.isEmpty ? [] : try reference.folders.map { try ImageEvaluation.imageNames(in: $0).count }
        for setting in settings {
            guard setting.folders.count == reference.folders.count else {
                throw EvaluationInputError(path: setting.name, message: "has \(setting.folders.count) folder(s), the reference '\(reference.name)' \(reference.folders.count): one per seed, in the same order")
            }
            let reports = try setting.folders.indices.map { k in
                let (folder, referenceFolder, referenceCount) = (setting.folders[k], reference.folders[k], referenceCounts[k])
                let report = try ImageEvaluation(images: folder, reference: referenceFolder, captions: captions, ssimWindows: ssimWindows).run()
                guard report.rows.count == referenceCount else {
                    throw EvaluationInputError(path: folder.path, message: "holds \(report.rows.count) image(s), the reference \(referenceFolder.path) \(referenceCount)")
                }
                return report
            }
            lines.append(Line(name: setting.name, report: Self.pooled(reports), firstSeed: reports[0]))
        }
        return lines
    }

    static func pooled(_ reports: [EvaluationReport]) -> EvaluationReport {
        EvaluationReport(rows: reports.flatMap(\.rows), ssimWindows: reports[0].ssimWindows,
                         hasReference: reports[0].hasReference, hasCaptions: reports[0].hasCaptions)
    }

    /// Windows with a value in some line (a 511 window on 128² images has none).
    func measuredWindows(_ lines: [Line]) -> [Int] {
        ssimWindows.filter { window in lines.contains { $0.report.meanSSIM(window: window) != nil } }
    }

    var attributes: [CaptionAccuracy.Attribute] { captions == nil ? [] : CaptionAccuracy.Attribute.allCases }

    /// Cells of one line: images, SSIM per measured window, PSNR, then accuracy per attribute.
    func cells(_ line: Line, windows: [Int]) -> [String] {
        var cells = ["\(line.report.rows.count)"]
        for window in windows {
            cells.append(line.report.meanSSIM(window: window).map { String(format: "%.5f", $0.mean) } ?? "-")
        }
        if line.report.hasReference {
            let psnr = line.report.meanPSNR
            cells.append(psnr.mean.map { String(format: "%.2f", $0) } ?? (psnr.identical > 0 ? "inf" : "-"))
        } else {
            cells.append("-")
        }
        let accuracy = line.report.accuracy
        for attribute in attributes {
            cells.append(accuracy.accuracy(attribute).map { String(format: "%.3f", $0) } ?? "-")
        }
        return cells
    }

    func header(windows: [Int]) -> [String] {
        ["setting", "images"] + windows.map { "SSIM \($0)x\($0) vs \(reference.name)" } + ["PSNR vs \(reference.name) (dB)"]
            + attributes.map(\.rawValue)
    }

    public func markdown(_ lines: [Line]) -> String {
        let windows = measuredWindows(lines)
        let head = header(windows: windows)
        var out = [head.joined(separator: " | ").wrappedInPipes, "|" + head.map { _ in "---" }.joined(separator: "|") + "|"]
        for line in lines {
            out.append(([line.name] + cells(line, windows: windows)).joined(separator: " | ").wrappedInPipes)
        }
        return out.joined(separator: "\n") + "\n"
    }

    public func csv(_ lines: [Line]) -> String {
        let windows = measuredWindows(lines)
        var out = [header(windows: windows).map(EvaluationReport.csvField).joined(separator: ",")]
        for line in lines {
            out.append(([EvaluationReport.csvField(line.name)] + cells(line, windows: windows)).joined(separator: ","))
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The first seed's first `rows` images: the reference column, then one per setting, each image
    /// captioned with (settings) its SSIM against the reference and the checker's verdict ("ok", or
    /// "x" and the attributes it missed; "objs" for every object attribute).
    public func contactSheet(_ lines: [Line], rows: Int, title: String) throws -> ContactSheet {
        let names = Array(try ImageEvaluation.imageNames(in: reference.folders[0]).prefix(rows))
        guard let first = names.first else {
            throw EvaluationInputError(path: reference.folders[0].path, message: "holds no *.png image")
        }
        let size = try RGBImage.readPNG(reference.folders[0].appendingPathComponent(first))
        let window = measuredWindows(lines).first
        func caption(_ row: ImageEvaluation.Row?) -> String {
            guard let row else { return "" }
            var parts: [String] = []
            if let window, let ssim = row.ssim[window] { parts.append(String(format: "%.4f", ssim)) }
            if let check = row.check {
                // Short names: a cell is about 128 px wide.
                let short: [CaptionAccuracy.Attribute: String] = [.background: "bg", .colour: "col", .position: "pos", .size: "size", .shape: "shp"]
                let missed = CaptionAccuracy.Attribute.allCases.dropFirst().filter { !CaptionAccuracy.verdict(check, $0) }
                let objects: Set<CaptionAccuracy.Attribute> = [.colour, .position, .size, .shape]
                let named = objects.isSubset(of: Set(missed))
                    ? ["objs"] + (missed.contains(.background) ? ["bg"] : []) : missed.compactMap { short[$0] }
                parts.append(missed.isEmpty ? "ok" : "x " + named.joined(separator: ","))
            }
            return parts.joined(separator: " ")
        }
        let referenceRows = lines.first { $0.name == reference.name && !$0.report.hasReference }
        var columns = [ContactSheet.Column(
            title: reference.name, details: ["reference"], images: names.map { reference.folders[0].appendingPathComponent($0) },
            captions: names.map { name in caption(referenceRows?.firstSeed.rows.first { $0.name == name }) })]
        for (setting, line) in zip(settings, lines.filter { $0.report.hasReference }) {
            var details: [String] = []
            if let window, let ssim = line.report.meanSSIM(window: window) { details.append(String(format: "mean SSIM %.4f", ssim.mean)) }
            if let all = line.report.accuracy.accuracy(.all), captions != nil { details.append(String(format: "caption all %.2f", all)) }
            columns.append(ContactSheet.Column(
                title: setting.name, details: details, images: names.map { setting.folders[0].appendingPathComponent($0) },
                captions: names.map { name in caption(line.firstSeed.rows.first { $0.name == name }) }))
        }
        return ContactSheet(title: [title, "\(reference.name) and \(settings.count) setting(s), same seeds; images #0-#\(names.count - 1) of the first seed"],
                            columns: columns, imageWidth: size.width, imageHeight: size.height, cellSide: 128)
    }
}
