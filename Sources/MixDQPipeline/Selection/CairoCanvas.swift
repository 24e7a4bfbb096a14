import CCairo
import Foundation
import MixDQIO

/// A white RGB drawing surface on cairo: the text, lines and marks of the search's contact sheet
/// and Pareto plot, with images pasted in scaled. Text uses cairo's font selection (fontconfig;
/// DejaVu Sans from fonts-dejavu-core). The result comes back as an `RGBImage`, so it is written
/// like every other image (`RGBImage.writePNG`: temporary name, then rename).
final class CairoCanvas {
    struct Failure: Error, CustomStringConvertible, LocalizedError {
        let description: String
        var errorDescription: String? { description }
    }

    /// cairo's largest image surface side.
    static let maxSide = 32767

    let width: Int
    let height: Int
    private let surface: OpaquePointer
    private let context: OpaquePointer

    init(width: Int, height: Int, purpose: String) throws {
        guard width > 0, height > 0, width <= Self.maxSide, height <= Self.maxSide else {
            throw Failure(description: "\(purpose): \(width)x\(height) pixels is outside cairo's 1...\(Self.maxSide) per side")
        }
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(width), Int32(height)) else {
            throw Failure(description: "\(purpose): cairo could not create a \(width)x\(height) surface")
        }
        let status = cairo_surface_status(surface)
        guard status == CAIRO_STATUS_SUCCESS, let context = cairo_create(surface) else {
            cairo_surface_destroy(surface)
            throw Failure(description: "\(purpose): cairo could not create a \(width)x\(height) surface (\(String(cString: cairo_status_to_string(status))))")
        }
        self.width = width; self.height = height; self.surface = surface; self.context = context
        cairo_select_font_face(context, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
        setColor(1, 1, 1)
        cairo_paint(context)
    }

    deinit {
        cairo_destroy(context)
        cairo_surface_destroy(surface)
    }

    func setColor(_ r: Double, _ g: Double, _ b: Double) { cairo_set_source_rgb(context, r, g, b) }

    func fillRectangle(x: Double, y: Double, width: Double, height: Double) {
        cairo_rectangle(context, x, y, width, height)
        cairo_fill(context)
    }

    func strokeRectangle(x: Double, y: Double, width: Double, height: Double, lineWidth: Double = 1) {
        cairo_set_line_width(context, lineWidth)
        cairo_rectangle(context, x, y, width, height)
        cairo_stroke(context)
    }

    /// A polyline through `points` (at least two).
    func strokeLine(_ points: [(Double, Double)], lineWidth: Double = 1, dashed: Bool = false) {
        guard let first = points.first, points.count > 1 else { return }
        cairo_set_line_width(context, lineWidth)
        if dashed { var d: [Double] = [4, 3]; cairo_set_dash(context, &d, 2, 0) }
        cairo_move_to(context, first.0, first.1)
        for p in points.dropFirst() { cairo_line_to(context, p.0, p.1) }
        cairo_stroke(context)
        if dashed { cairo_set_dash(context, nil, 0, 0) }
    }

    func circle(x: Double, y: Double, radius: Double, filled: Bool, lineWidth: Double = 1.5) {
        cairo_new_sub_path(context)
        cairo_arc(context, x, y, radius, 0, 2 * Double.pi)
        if filled { cairo_fill(context) } else { cairo_set_line_width(context, lineWidth); cairo_stroke(context) }
    }

    enum Alignment { case left, center, right }

    func textWidth(_ text: String, size: Double, bold: Bool = false) -> Double {
        setFont(size: size, bold: bold)
        var extents = cairo_text_extents_t()
        cairo_text_extents(context, text, &extents)
        return extents.x_advance
    }

    /// One line of text with its baseline at `y`; `rotated` turns it a quarter counter-clockwise
    /// (a y-axis title), `x` then being its baseline and `y` its anchor.
    func text(_ text: String, x: Double, y: Double, size: Double, bold: Bool = false, alignment: Alignment = .left, rotated: Bool = false) {
        let w = textWidth(text, size: size, bold: bold)
        let shift = alignment == .left ? 0 : alignment == .center ? w / 2 : w
        cairo_save(context)
        cairo_translate(context, x, y)
        if rotated { cairo_rotate(context, -Double.pi / 2) }
        cairo_move_to(context, -shift, 0)
        cairo_show_text(context, text)
        cairo_restore(context)
    }

    /// `text` shortened with "…" until it is at most `maxWidth` wide.
    func fitted(_ text: String, maxWidth: Double, size: Double, bold: Bool = false) -> String {
        if textWidth(text, size: size, bold: bold) <= maxWidth { return text }
        var s = text
        while !s.isEmpty && textWidth(s + "…", size: size, bold: bold) > maxWidth { s.removeLast() }
        return s + "…"
    }

    /// Pastes `image` into the box, scaled to fit it and centred (cairo's GOOD filter averages when shrinking).
    func draw(_ image: RGBImage, x: Double, y: Double, width boxWidth: Double, height boxHeight: Double) throws {
        guard image.width > 0, image.height > 0 else { return }
        // RGB24 is one native 32-bit word per pixel, 0x00RRGGBB; rows are `stride` bytes (a multiple of 4).
        let stride = Int(cairo_format_stride_for_width(CAIRO_FORMAT_RGB24, Int32(image.width)))
        let wordsPerRow = stride / 4
        var data = [UInt32](repeating: 0, count: wordsPerRow * image.height)
        for row in 0..<image.height {
            for col in 0..<image.width {
                data[row * wordsPerRow + col] = UInt32(image[col, row, 0]) << 16 | UInt32(image[col, row, 1]) << 8 | UInt32(image[col, row, 2])
            }
        }
        let scale = min(boxWidth / Double(image.width), boxHeight / Double(image.height))
        let (w, h) = (Double(image.width) * scale, Double(image.height) * scale)
        try data.withUnsafeMutableBytes { buffer in
            guard let source = cairo_image_surface_create_for_data(buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), CAIRO_FORMAT_RGB24, Int32(image.width),
                                                                    Int32(image.height), Int32(stride)) else {
                throw Failure(description: "cairo could not wrap a \(image.width)x\(image.height) image")
            }
            defer { cairo_surface_destroy(source) }
            let status = cairo_surface_status(source)
            guard status == CAIRO_STATUS_SUCCESS else {
                throw Failure(description: "cairo could not wrap a \(image.width)x\(image.height) image (\(String(cString: cairo_status_to_string(status))))")
            }
            cairo_save(context)
            cairo_translate(context, x + (boxWidth - w) / 2, y + (boxHeight - h) / 2)
            cairo_scale(context, scale, scale)
            cairo_set_source_surface(context, source, 0, 0)
            cairo_pattern_set_filter(cairo_get_source(context), scale < 1 ? CAIRO_FILTER_GOOD : CAIRO_FILTER_NEAREST)
            cairo_paint(context)
            cairo_restore(context)
        }
    }

    /// The drawing as 8-bit RGB; a failure anywhere in the drawing (cairo's sticky status) is reported here.
    func image() throws -> RGBImage {
        cairo_surface_flush(surface)
        let status = cairo_status(context)
        guard status == CAIRO_STATUS_SUCCESS else {
            throw Failure(description: "cairo drawing failed: \(String(cString: cairo_status_to_string(status)))")
        }
        guard let base = cairo_image_surface_get_data(surface) else { throw Failure(description: "cairo surface has no pixel data") }
        let stride = Int(cairo_image_surface_get_stride(surface))
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for row in 0..<height {
            for col in 0..<width {
                let word = UnsafeRawPointer(base + row * stride + col * 4).loadUnaligned(as: UInt32.self)
                let o = (row * width + col) * 3
                pixels[o] = UInt8((word >> 16) & 0xFF); pixels[o + 1] = UInt8((word >> 8) & 0xFF); pixels[o + 2] = UInt8(word & 0xFF)
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    private func setFont(size: Double, bold: Bool) {
        cairo_select_font_face(context, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(context, size)
    }
}
