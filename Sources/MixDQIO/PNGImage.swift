import CPNG
import Foundation
import MixDQCompute

/// A failed PNG read or write, naming the file.
public struct PNGError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
    public var errorDescription: String? { description }
}

/// An 8-bit RGB image, pixels interleaved row by row (`pixels[(y * width + x) * 3 + c]`).
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "\(pixels.count) bytes do not make a \(width)x\(height) RGB image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public subscript(x: Int, y: Int, channel: Int) -> UInt8 {
        pixels[(y * width + x) * 3 + channel]
    }

    /// Image `index` of a VAE output `[N, 3, H, W]` in [-1, 1], converted exactly as diffusers'
    /// `VaeImageProcessor.postprocess` + `numpy_to_pil` do: `x/2 + 0.5`, clamp to [0, 1], `* 255`,
    /// numpy `round` (half to even), `uint8`. All in float32, as there.
    public static func fromDecoded(_ nchw: Tensor, index: Int) -> RGBImage {
        precondition(nchw.rank == 4 && nchw.shape[1] == 3, "expected a decoded image [N,3,H,W], got \(nchw.shape)")
        precondition(index >= 0 && index < nchw.shape[0], "image \(index) out of range for \(nchw.shape)")
        let (h, w) = (nchw.shape[2], nchw.shape[3])
        let plane = h * w
        let base = nchw.data + index * 3 * plane
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        for c in 0..<3 {
            let src = base + c * plane
            for p in 0..<plane {
                pixels[p * 3 + c] = toByte(src[p])
            }
        }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    /// The same conversion for an NHWC decoder output (`FeatureMap`, `[N, H, W, 3]`).
    public static func fromDecoded(_ nhwc: FeatureMap, index: Int) -> RGBImage {
        precondition(nhwc.channels == 3, "expected 3 channels, got \(nhwc.tensor.shape)")
        precondition(index >= 0 && index < nhwc.batch, "image \(index) out of range for \(nhwc.tensor.shape)")
        let count = nhwc.pixels * 3
        let src = nhwc.tensor.data + index * count
        var pixels = [UInt8](repeating: 0, count: count)
        for i in 0..<count { pixels[i] = toByte(src[i]) }
        return RGBImage(width: nhwc.width, height: nhwc.height, pixels: pixels)
    }

    /// One sample of the diffusers mapping. NaN (which torch's clamp passes through and numpy's
    /// uint8 cast leaves undefined) becomes 0.
    @inline(__always)
    static func toByte(_ x: Float) -> UInt8 {
        var v = x / 2 + 0.5
        if v.isNaN { return 0 }
        v = min(max(v, 0), 1) * 255
        return UInt8(v.rounded(.toNearestOrEven))
    }

    // MARK: PNG files

    /// Writes an 8-bit RGB PNG. The file is written at a temporary name in the same folder and
    /// renamed, so a crash never leaves a truncated image at `url`.
    public func writePNG(to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        let temp = folder.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8)).tmp")
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = png_uint_32(PNG_FORMAT_RGB)
        let ok = pixels.withUnsafeBytes { buf in
            png_image_write_to_file(&image, temp.path, 0, buf.baseAddress, 0, nil)
        }
        if ok == 0 {
            let message = Self.message(of: &image)
            png_image_free(&image)
            try? FileManager.default.removeItem(at: temp)
            throw PNGError(path: url.path, message: "cannot write PNG (\(message))")
        }
        if rename(temp.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temp)
            throw PNGError(path: url.path, message: "cannot move the written image into place (\(reason))")
        }
    }

    /// Reads any PNG (grey, palette, 16-bit, alpha ...) converted to 8-bit RGB. Alpha is dropped
    /// by compositing on black, as libpng's simplified API does without a background.
    public static func readPNG(_ url: URL) throws -> RGBImage {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PNGError(path: url.path, message: "no such file")
        }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, url.path) != 0 else {
            let message = Self.message(of: &image)
            png_image_free(&image)
            throw PNGError(path: url.path, message: "cannot read PNG (\(message))")
        }
        image.format = png_uint_32(PNG_FORMAT_RGB)
        let (w, h) = (Int(image.width), Int(image.height))
        // The header is input: refuse a size whose pixel buffer would be absurd (libpng allows
        // up to 1,000,000 x 1,000,000) before allocating it.
        guard w * h <= Self.maxReadPixels else {
            png_image_free(&image)
            throw PNGError(path: url.path, message: "\(w)x\(h) is larger than the \(Self.maxReadPixels) pixels this reader accepts")
        }
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        let ok = pixels.withUnsafeMutableBytes { buf in
            png_image_finish_read(&image, nil, buf.baseAddress, 0, nil)
        }
        guard ok != 0 else {
            let message = Self.message(of: &image)
            png_image_free(&image)
            throw PNGError(path: url.path, message: "cannot decode PNG (\(message))")
        }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    /// 16384 x 16384: four times the largest image the pipeline makes, on each side.
    public static let maxReadPixels = 16384 * 16384

    /// Width and height from a PNG's header, without decoding the pixels (an empty or damaged
    /// file throws, naming it).
    public static func pngSize(_ url: URL) throws -> (width: Int, height: Int) {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, url.path) != 0 else {
            let message = Self.message(of: &image)
            png_image_free(&image)
            throw PNGError(path: url.path, message: "not a readable PNG (\(message))")
        }
        defer { png_image_free(&image) }
        return (Int(image.width), Int(image.height))
    }

    /// libpng's error text, kept in a fixed `char[64]` inside the image struct.
    private static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            let text = String(decoding: bytes, as: UTF8.self)
            return text.isEmpty ? "unknown libpng error" : text
        }
    }
}
