import Foundation
import MixDQIO

/// The selection's contact sheet: one row per prompt, the FP image first and then every candidate
/// in rank order; each column headed by the candidate's name, mean bits and mean metric, each
/// image captioned with its own metric against the FP image of its row.
public struct ContactSheet {
    public struct Column {
        public var title: String
        /// Lines under the title (mean bits, mean metric).
        public var details: [String]
        public var images: [URL]
        /// One caption per image ("" for the FP column).
        public var captions: [String]
        public init(title: String, details: [String], images: [URL], captions: [String]) {
            self.title = title; self.details = details; self.images = images; self.captions = captions
        }
    }

    /// Two lines above the columns.
    public var title: [String]
    public var columns: [Column]
    /// Image width and height of the rendered images (every column's).
    public var imageWidth: Int
    public var imageHeight: Int
    /// Largest side of a pasted image in the sheet.
    public var cellSide: Int

    static let margin = 10.0, gap = 8.0, rowLabelWidth = 34.0, titleHeight = 40.0, headerHeight = 48.0, captionHeight = 16.0
    static let minColumnWidth = 120.0, fontSize = 11.0

    public init(title: [String], columns: [Column], imageWidth: Int, imageHeight: Int, cellSide: Int = 192) {
        self.title = title; self.columns = columns; self.imageWidth = imageWidth; self.imageHeight = imageHeight; self.cellSide = cellSide
    }

    /// The pasted image size: the image scaled to `cellSide` on its longer side (never enlarged),
    /// shrunk further if the sheet would exceed cairo's widest surface.
    public var cellSize: (width: Double, height: Double) {
        let longer = Double(max(imageWidth, imageHeight, 1))
        var scale = min(1, Double(cellSide) / longer)
        if Double(imageWidth) * scale > widestColumn { scale = widestColumn / Double(max(imageWidth, 1)) }
        return (Double(imageWidth) * scale, Double(imageHeight) * scale)
    }

    /// The widest a column may be for the sheet to stay within cairo's widest surface.
    var widestColumn: Double {
        let available = Double(CairoCanvas.maxSide - 1) - 2 * Self.margin - Self.rowLabelWidth
        return available / Double(max(columns.count, 1)) - Self.gap
    }

    var columnWidth: Double { min(max(cellSize.width, Self.minColumnWidth), widestColumn) }
    var rows: Int { columns.map(\.images.count).max() ?? 0 }

    /// Sheet size in pixels.
    public var size: (width: Int, height: Int) {
        let w = 2 * Self.margin + Self.rowLabelWidth + Double(columns.count) * (columnWidth + Self.gap)
        let h = 2 * Self.margin + Self.titleHeight + Self.headerHeight + Double(rows) * (cellSize.height + Self.captionHeight + Self.gap)
        return (Int(w.rounded(.up)), Int(h.rounded(.up)))
    }

    public func render() throws -> RGBImage {
        guard widestColumn >= 16 else {
            throw CairoCanvas.Failure(description: "contact sheet: \(columns.count) columns do not fit one image of at most \(CairoCanvas.maxSide) pixels")
        }
        let (width, height) = size
        let canvas = try CairoCanvas(width: width, height: height, purpose: "contact sheet")
        let cell = cellSize, columnWidth = self.columnWidth
        canvas.setColor(0, 0, 0)
        for (i, line) in title.prefix(2).enumerated() {
            canvas.text(canvas.fitted(line, maxWidth: Double(width) - 2 * Self.margin, size: Self.fontSize + (i == 0 ? 2 : 0), bold: i == 0),
                        x: Self.margin, y: Self.margin + 14 + 17 * Double(i), size: Self.fontSize + (i == 0 ? 2 : 0), bold: i == 0)
        }
        let top = Self.margin + Self.titleHeight
        for (c, column) in columns.enumerated() {
            let x = Self.margin + Self.rowLabelWidth + Double(c) * (columnWidth + Self.gap)
            canvas.setColor(0, 0, 0)
            canvas.text(canvas.fitted(column.title, maxWidth: columnWidth, size: Self.fontSize, bold: true), x: x + columnWidth / 2, y: top + 12,
                        size: Self.fontSize, bold: true, alignment: .center)
            canvas.setColor(0.25, 0.25, 0.25)
            for (i, line) in column.details.prefix(2).enumerated() {
                canvas.text(canvas.fitted(line, maxWidth: columnWidth, size: Self.fontSize), x: x + columnWidth / 2, y: top + 27 + 14 * Double(i),
                            size: Self.fontSize, alignment: .center)
            }
            for (r, url) in column.images.enumerated() {
                let y = top + Self.headerHeight + Double(r) * (cell.height + Self.captionHeight + Self.gap)
                try canvas.draw(try RGBImage.readPNG(url), x: x + (columnWidth - cell.width) / 2, y: y, width: cell.width, height: cell.height)
                if r < column.captions.count, !column.captions[r].isEmpty {
                    canvas.setColor(0, 0, 0)
                    canvas.text(canvas.fitted(column.captions[r], maxWidth: columnWidth, size: Self.fontSize), x: x + columnWidth / 2,
                                y: y + cell.height + 12, size: Self.fontSize, alignment: .center)
                }
            }
        }
        canvas.setColor(0, 0, 0)
        for r in 0..<rows {
            let y = top + Self.headerHeight + Double(r) * (cell.height + Self.captionHeight + Self.gap)
            canvas.text("#\(r)", x: Self.margin, y: y + cell.height / 2 + 4, size: Self.fontSize, bold: true)
        }
        return try canvas.image()
    }
}
