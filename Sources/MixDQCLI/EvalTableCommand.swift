import ArgumentParser
import Foundation
import MixDQIO
import MixDQPipeline

/// `mixdq eval-table`: issue 10's quality table. Each setting's images (one folder per seed) are
/// scored against the reference's images of the same seed and against the captions, pooled over
/// the seeds, one line per setting; with a contact sheet of the first seed.
struct EvalTableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-table",
        abstract: "One table of quality against a reference (e.g. FP) for several settings, pooled over seeds.")
    @Option(help: "The reference: NAME=DIR[,DIR...], one folder per seed (e.g. FP=fp_s0,fp_s1).") var reference: String
    @Option(help: "A setting: NAME=DIR[,DIR...], one folder per seed in the reference's order; repeat for each setting.")
    var setting: [String] = []
    @Option(help: "Synthetic-shapes captions (one per line, line i+1 for <i>.png): adds the checker's accuracy per attribute.")
    var captions: String?
    @Option(help: "Markdown table to write.") var markdown: String?
    @Option(help: "CSV table to write.") var csv: String?
    @Option(help: "Contact sheet PNG to write (the first seed's images, reference then each setting).") var sheet: String?
    @Option(help: "Images (rows) in the contact sheet.") var sheetRows: Int = 8
    @Option(help: "Title of the contact sheet.") var title: String = "mixdq eval-table"
    @Option(help: "SSIM window sides, odd, >= 3 (n/a for images smaller than the window).") var ssimWindows: String = "7,511"

    func validate() throws {
        guard !setting.isEmpty || captions != nil else {
            throw ValidationError("nothing to measure: give --setting NAME=DIR[,DIR...] (one or more), --captions FILE or both")
        }
        guard (1...64).contains(sheetRows) else { throw ValidationError("--sheet-rows \(sheetRows): must be 1...64") }
        _ = try EvalCommand.parseWindows(ssimWindows)
    }

    func run() throws {
        let table = QualityTable(reference: try QualityTable.Setting.parse(reference, option: "--reference"),
                                 settings: try setting.map { try QualityTable.Setting.parse($0, option: "--setting") },
                                 captions: captions.map { URL(fileURLWithPath: $0) }, ssimWindows: try EvalCommand.parseWindows(ssimWindows))
        let lines = try table.run()
        let markdownText = table.markdown(lines)
        print(markdownText, terminator: "")
        if let markdown { try AtomicFile.write(Data(markdownText.utf8), to: URL(fileURLWithPath: markdown)) }
        if let csv { try AtomicFile.write(Data(table.csv(lines).utf8), to: URL(fileURLWithPath: csv)) }
        if let sheet {
            try table.contactSheet(lines, rows: sheetRows, title: title).render().writePNG(to: URL(fileURLWithPath: sheet))
            print("wrote \(sheet)")
        }
    }
}
