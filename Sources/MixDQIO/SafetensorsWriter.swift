import Foundation
import CKernels
import MixDQCompute

/// Writes float32 tensors as a safetensors file, byte-compatible with the reference writer:
/// tensors sorted by name, contiguous data_offsets, header padded with spaces to a multiple of 8
/// so the data region starts 8-byte aligned (and F32 tensors can be memory-mapped as views).
public enum SafetensorsWriter {
    /// Elements converted and written per chunk; bounds the extra memory for multi-GB checkpoints.
    public static let chunkElements = 1 << 20

    /// Writes `tensors` (stored as `dtype`: F32, F16 or BF16, converted with round-to-nearest-even)
    /// atomically to `url`. Throws `SafetensorsError.duplicateKey` / `.unsupportedDType`, or
    /// `IOError` naming the path when it cannot be written.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:],
                             dtype: SafetensorsDType = .f32, to url: URL) throws {
        let path = url.path
        guard dtype == .f32 || dtype == .f16 || dtype == .bf16 else {
            throw SafetensorsError.unsupportedDType(path: path, key: tensors.first?.0 ?? "(none)", dtype: dtype.rawValue)
        }
        // Byte order, as the reference does (serde's BTreeMap); equals String order for ASCII names.
        let sorted = tensors.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        for i in sorted.indices.dropFirst() where sorted[i].0 == sorted[i - 1].0 {
            throw SafetensorsError.duplicateKey(path: path, key: sorted[i].0)
        }
        if let bad = sorted.first(where: { $0.0 == "__metadata__" }) {
            throw SafetensorsError.invalidEntry(path: path, key: bad.0, reason: "a tensor may not be named __metadata__")
        }

        let header = headerBytes(sorted.map { ($0.0, $0.1.shape) }, metadata: metadata, dtype: dtype)
        try AtomicFile.write(to: url) { handle in
            var prefix = Data(count: 8)
            let n = UInt64(header.count).littleEndian
            withUnsafeBytes(of: n) { prefix.replaceSubrange(0..<8, with: $0) }
            try handle.write(contentsOf: prefix)
            try handle.write(contentsOf: header)
            for (_, t) in sorted { try writeData(t, as: dtype, to: handle) }
        }
    }

    /// The padded JSON header for tensors stored in this order (exposed for tests).
    static func headerBytes(_ tensors: [(String, [Int])], metadata: [String: String], dtype: SafetensorsDType) -> Data {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            json += "\"__metadata__\":{" + pairs.joined(separator: ",") + "}"
            first = false
        }
        var offset = 0
        for (name, shape) in tensors {
            let bytes = shape.reduce(1, *) * dtype.byteSize
            if !first { json += "," }
            first = false
            json += "\(jsonString(name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],"
                + "\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        json += "}"
        var data = Data(json.utf8)
        let pad = (8 - data.count % 8) % 8
        data.append(contentsOf: [UInt8](repeating: 0x20, count: pad))
        return data
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// Streams one tensor in chunks (host byte order is little-endian on every supported target).
    private static func writeData(_ t: Tensor, as dtype: SafetensorsDType, to handle: FileHandle) throws {
        var start = 0
        var halves = dtype == .f32 ? [] : [UInt16](repeating: 0, count: min(chunkElements, t.count))
        while start < t.count {
            let n = min(chunkElements, t.count - start)
            let src = t.data + start
            switch dtype {
            case .f32:
                try handle.write(contentsOf: UnsafeRawBufferPointer(start: src, count: n * 4))
            case .f16:
                for i in 0..<n { halves[i] = Float16(src[i]).bitPattern }
                try halves.withUnsafeBytes { try handle.write(contentsOf: UnsafeRawBufferPointer(rebasing: $0[0..<(n * 2)])) }
            default: // .bf16
                halves.withUnsafeMutableBufferPointer { mdq_f32_to_bf16(src, $0.baseAddress!, n) }
                try halves.withUnsafeBytes { try handle.write(contentsOf: UnsafeRawBufferPointer(rebasing: $0[0..<(n * 2)])) }
            }
            start += n
        }
    }
}
