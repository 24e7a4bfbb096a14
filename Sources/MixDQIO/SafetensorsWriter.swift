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
        guard dtype == .f32 || dtype == .f16 || dtype == .bf16 else {
            throw SafetensorsError.unsupportedDType(path: url.path, key: tensors.first?.0 ?? "(none)", dtype: dtype.rawValue)
        }
        try write(items: tensors.map { SafetensorsItem(name: $0.0, tensor: $0.1, dtype: dtype) }, metadata: metadata, to: url)
    }

    /// Writes float tensors and raw integer buffers (packed weight codes) together, atomically.
    public static func write(items: [SafetensorsItem], metadata: [String: String] = [:], to url: URL) throws {
        let path = url.path
        // Byte order, as the reference does (serde's BTreeMap); equals String order for ASCII names.
        let sorted = items.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for i in sorted.indices.dropFirst() where sorted[i].name == sorted[i - 1].name {
            throw SafetensorsError.duplicateKey(path: path, key: sorted[i].name)
        }
        if let bad = sorted.first(where: { $0.name == "__metadata__" }) {
            throw SafetensorsError.invalidEntry(path: path, key: bad.name, reason: "a tensor may not be named __metadata__")
        }
        for item in sorted {
            if case .bytes(let b) = item.payload, b.count != item.shape.reduce(1, *) * item.dtype.byteSize {
                throw SafetensorsError.invalidEntry(path: path, key: item.name,
                                                    reason: "\(b.count) bytes for shape \(item.shape) of \(item.dtype.rawValue)")
            }
        }
        let header = headerBytes(sorted.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata)
        try AtomicFile.write(to: url) { handle in
            var prefix = Data(count: 8)
            let n = UInt64(header.count).littleEndian
            withUnsafeBytes(of: n) { prefix.replaceSubrange(0..<8, with: $0) }
            try handle.write(contentsOf: prefix)
            try handle.write(contentsOf: header)
            for item in sorted {
                switch item.payload {
                case .tensor(let t): try writeData(t, as: item.dtype, to: handle)
                case .bytes(let b): try b.withUnsafeBytes { try handle.write(contentsOf: $0) }
                }
            }
        }
    }

    static func headerBytes(_ tensors: [(String, [Int])], metadata: [String: String], dtype: SafetensorsDType) -> Data {
        headerBytes(tensors.map { ($0.0, dtype, $0.1) }, metadata: metadata)
    }

    /// The padded JSON header for tensors stored in this order (exposed for tests).
    static func headerBytes(_ tensors: [(String, SafetensorsDType, [Int])], metadata: [String: String]) -> Data {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            json += "\"__metadata__\":{" + pairs.joined(separator: ",") + "}"
            first = false
        }
        var offset = 0
        for (name, dtype, shape) in tensors {
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

/// One entry of a safetensors file to write: a float tensor (stored as F32, F16 or BF16) or raw
/// bytes of an integer type (U8 packed weight codes).
public struct SafetensorsItem {
    public enum Payload { case tensor(Tensor), bytes([UInt8]) }
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    public let payload: Payload

    public init(name: String, tensor: Tensor, dtype: SafetensorsDType = .f32) {
        self.name = name; self.dtype = dtype; shape = tensor.shape; payload = .tensor(tensor)
    }

    public init(name: String, bytes: [UInt8], dtype: SafetensorsDType = .u8, shape: [Int]? = nil) {
        self.name = name; self.dtype = dtype; self.shape = shape ?? [bytes.count / max(dtype.byteSize, 1)]; payload = .bytes(bytes)
    }
}
