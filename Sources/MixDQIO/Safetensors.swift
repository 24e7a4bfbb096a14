import Foundation
#if canImport(Glibc)
import Glibc
#endif
import CKernels
import MixDQCompute

/// A failure reading, validating or writing a safetensors file. Every description names the file
/// and, where one is involved, the tensor key, so a bad checkpoint is found without a debugger.
public enum SafetensorsError: Error, CustomStringConvertible, LocalizedError, Equatable {
    case cannotOpen(path: String, reason: String)
    case truncated(path: String, size: Int)
    case headerLengthPastEnd(path: String, headerLength: UInt64, fileSize: Int)
    case invalidHeader(path: String, reason: String)
    case invalidEntry(path: String, key: String, reason: String)
    case unknownDType(path: String, key: String, dtype: String)
    case invalidShape(path: String, key: String, shape: String, reason: String)
    case byteCountMismatch(path: String, key: String, dtype: String, shape: [Int], expected: Int, found: Int)
    case offsetsReversed(path: String, key: String, begin: Int, end: Int)
    case offsetsOutOfRange(path: String, key: String, end: Int, dataSize: Int)
    case overlap(path: String, key: String, other: String)
    case hole(path: String, key: String, begin: Int, expected: Int)
    case trailingBytes(path: String, lastKey: String, count: Int)
    case missingKey(path: String, key: String)
    case unsupportedDType(path: String, key: String, dtype: String)
    case duplicateKey(path: String, key: String)
    case invalidIndex(path: String, key: String, reason: String)
    case noWeights(folder: String, candidates: [String])

    public var path: String {
        switch self {
        case let .cannotOpen(p, _), let .truncated(p, _), let .headerLengthPastEnd(p, _, _),
             let .invalidHeader(p, _), let .invalidEntry(p, _, _), let .unknownDType(p, _, _),
             let .invalidShape(p, _, _, _), let .byteCountMismatch(p, _, _, _, _, _),
             let .offsetsReversed(p, _, _, _), let .offsetsOutOfRange(p, _, _, _), let .overlap(p, _, _),
             let .hole(p, _, _, _), let .trailingBytes(p, _, _), let .missingKey(p, _),
             let .unsupportedDType(p, _, _), let .duplicateKey(p, _), let .invalidIndex(p, _, _),
             let .noWeights(p, _):
            return p
        }
    }

    public var description: String {
        switch self {
        case let .cannotOpen(p, reason):
            return "\(p): cannot open safetensors file: \(reason)"
        case let .truncated(p, size):
            return "\(p): truncated safetensors file (\(size) bytes, need at least 8 for the header length)"
        case let .headerLengthPastEnd(p, n, size):
            return "\(p): header length \(n) runs past the end of the file (\(size) bytes)"
        case let .invalidHeader(p, reason):
            return "\(p): invalid safetensors header: \(reason)"
        case let .invalidEntry(p, key, reason):
            return "\(p): tensor '\(key)': invalid header entry: \(reason)"
        case let .unknownDType(p, key, dtype):
            return "\(p): tensor '\(key)': unknown dtype '\(dtype)'"
        case let .invalidShape(p, key, shape, reason):
            return "\(p): tensor '\(key)': invalid shape \(shape): \(reason)"
        case let .byteCountMismatch(p, key, dtype, shape, expected, found):
            return "\(p): tensor '\(key)': data_offsets span \(found) bytes but \(dtype) \(shape) needs \(expected)"
        case let .offsetsReversed(p, key, begin, end):
            return "\(p): tensor '\(key)': data_offsets end \(end) is before begin \(begin)"
        case let .offsetsOutOfRange(p, key, end, dataSize):
            return "\(p): tensor '\(key)': data_offsets end \(end) is past the end of the data region (\(dataSize) bytes)"
        case let .overlap(p, key, other):
            return "\(p): tensor '\(key)' overlaps tensor '\(other)'"
        case let .hole(p, key, begin, expected):
            return "\(p): tensor '\(key)' starts at data offset \(begin), leaving a hole after byte \(expected)"
        case let .trailingBytes(p, lastKey, count):
            return "\(p): \(count) unindexed byte(s) after the last tensor '\(lastKey)'"
        case let .missingKey(p, key):
            return "\(p): no tensor '\(key)'"
        case let .unsupportedDType(p, key, dtype):
            return "\(p): tensor '\(key)': unsupported dtype \(dtype) (float32 conversion needs F32, F16, BF16 or F64)"
        case let .duplicateKey(p, key):
            return "\(p): tensor '\(key)' appears more than once"
        case let .invalidIndex(p, key, reason):
            return "\(p): tensor '\(key)': \(reason)"
        case let .noWeights(folder, candidates):
            return "\(folder): no weights file found (looked for \(candidates.joined(separator: ", ")))"
        }
    }

    public var errorDescription: String? { description }
}

/// A safetensors file, memory-mapped read-only and validated completely on open.
///
/// Layout: u64 little-endian header length N, N bytes of JSON header, then the data region.
/// Validation mirrors the reference implementation (the data region must be indexed exactly,
/// without overlaps or holes), so anything that opens can be read without further checks.
public final class SafetensorsFile: @unchecked Sendable {
    public struct Entry: Sendable {
        public let dtype: SafetensorsDType
        public let shape: [Int]
        /// Byte range relative to the start of the data region.
        public let begin: Int
        public let end: Int
    }

    public let path: String
    public let metadata: [String: String]
    /// Tensor names, sorted.
    public let keys: [String]
    public let fileSize: Int
    /// Absolute byte offset of the data region (8 + header length).
    public let dataOffset: Int

    private let entries: [String: Entry]
    private let base: UnsafeRawPointer?   // nil only for files too small to map
    private let mappedLength: Int

    // The reference implementation refuses headers above 100 MB; so do we, before parsing.
    static let maxHeaderLength: UInt64 = 100_000_000

    public convenience init(_ url: URL) throws {
        try self.init(path: url.path)
    }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafetensorsError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafetensorsError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SafetensorsError.cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        fileSize = size
        guard size >= 8 else { throw SafetensorsError.truncated(path: path, size: size) }

        // PROT_READ + MAP_PRIVATE: the file can never be modified through us, and a read-only
        // mapping does not count against the commit limit (a 10 GB checkpoint on an 8 GB box).
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw SafetensorsError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        let mapped = UnsafeRawPointer(m)
        // From here on a throw must unmap: deinit does not run for a failed init.
        do {
            let table = try Self.readTable(UnsafeRawBufferPointer(start: mapped, count: size), path: path)
            self.dataOffset = table.dataOffset
            self.entries = table.entries
            self.metadata = table.metadata
            self.keys = table.entries.keys.sorted()
        } catch {
            munmap(m, size)
            throw error
        }
        base = mapped
        mappedLength = size
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
    }

    public func contains(_ key: String) -> Bool { entries[key] != nil }

    public func entry(_ key: String) throws -> Entry {
        guard let e = entries[key] else { throw SafetensorsError.missingKey(path: path, key: key) }
        return e
    }

    public func info(_ key: String) throws -> (dtype: SafetensorsDType, shape: [Int]) {
        let e = try entry(key)
        return (e.dtype, e.shape)
    }

    /// The tensor's bytes as stored (little-endian, any alignment). Valid while `self` is alive.
    public func rawBytes(_ key: String) throws -> UnsafeRawBufferPointer {
        let e = try entry(key)
        return UnsafeRawBufferPointer(start: base! + dataOffset + e.begin, count: e.end - e.begin)
    }

    /// The tensor as float32. Aligned F32 data comes back as a zero-copy view of the mapping,
    /// which is read-only memory: pass `copy: true` when the caller will modify the tensor.
    /// F16 / BF16 / F64 are converted into fresh memory.
    public func floatTensor(_ key: String, copy: Bool = false) throws -> Tensor {
        let e = try entry(key)
        guard e.dtype.isConvertibleToFloat else {
            throw SafetensorsError.unsupportedDType(path: path, key: key, dtype: e.dtype.rawValue)
        }
        let n = e.shape.reduce(1, *)
        if n == 0 { return Tensor(zeros: e.shape) }
        let src = base! + dataOffset + e.begin
        switch e.dtype {
        case .f32:
            // The format does not align tensors; only a 4-byte aligned start can be viewed.
            if !copy && Int(bitPattern: src) % MemoryLayout<Float>.alignment == 0 {
                let p = UnsafeMutablePointer(mutating: src.assumingMemoryBound(to: Float.self))
                return Tensor(viewing: p, shape: e.shape, owner: self)
            }
            let t = Tensor(uninitializedShape: e.shape)
            UnsafeMutableRawPointer(t.data).copyMemory(from: src, byteCount: n * 4)
            return t
        case .f16, .bf16:
            let t = Tensor(uninitializedShape: e.shape)
            withHalfWords(src, count: n) { words in
                if e.dtype == .f16 { mdq_f16_to_f32(words, t.data, n) } else { mdq_bf16_to_f32(words, t.data, n) }
            }
            return t
        case .f64:
            let t = Tensor(uninitializedShape: e.shape)
            for i in 0..<n { t.data[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            return t
        default:
            throw SafetensorsError.unsupportedDType(path: path, key: key, dtype: e.dtype.rawValue)
        }
    }

    /// Returns the mapped pages wholly inside a tensor's byte range to the kernel (they are re-read
    /// from disk if touched again). A model converts or copies each weight once; without this the
    /// file's pages stay resident next to the converted copy and double the peak memory of loading.
    public func releasePages(_ key: String) {
        guard let base, let e = entries[key] else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) + dataOffset + e.begin
        let end = Int(bitPattern: base) + dataOffset + e.end
        let lo = (start + page - 1) / page * page, hi = end / page * page
        if hi > lo { madvise(UnsafeMutableRawPointer(bitPattern: lo), hi - lo, MADV_DONTNEED) }
    }

    /// Hands the C converters a 2-byte aligned uint16 pointer, copying first when the file is not.
    private func withHalfWords(_ src: UnsafeRawPointer, count n: Int, _ body: (UnsafePointer<UInt16>) -> Void) {
        if Int(bitPattern: src) % 2 == 0 {
            body(src.assumingMemoryBound(to: UInt16.self))
        } else {
            let tmp = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
            defer { tmp.deallocate() }
            UnsafeMutableRawPointer(tmp).copyMemory(from: src, byteCount: n * 2)
            body(tmp)
        }
    }

    // MARK: - header validation

    /// The validated tensor table of a whole safetensors file held in memory.
    public struct Table {
        public let entries: [String: Entry]
        public let metadata: [String: String]
        /// Absolute byte offset of the data region (8 + header length).
        public let dataOffset: Int
    }

    /// Validates the header and tensor table of `contents` (a complete file image) exactly as
    /// opening a file does; `path` only names the file in errors. Exposed so that the fuzz
    /// targets can drive the real validation without a file per input.
    public static func readTable(_ contents: UnsafeRawBufferPointer, path: String) throws -> Table {
        let size = contents.count
        guard size >= 8, let start = contents.baseAddress else { throw SafetensorsError.truncated(path: path, size: size) }
        let n = UInt64(littleEndian: start.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(size - 8) else {
            throw SafetensorsError.headerLengthPastEnd(path: path, headerLength: n, fileSize: size)
        }
        guard n <= maxHeaderLength else {
            throw SafetensorsError.invalidHeader(path: path, reason: "header length \(n) exceeds the 100 MB limit")
        }
        let headerBytes = UnsafeRawBufferPointer(start: start + 8, count: Int(n))
        let dataOffset = 8 + Int(n)
        let parsed = try parseHeader(headerBytes, path: path, dataSize: size - dataOffset)
        return Table(entries: parsed.entries, metadata: parsed.metadata, dataOffset: dataOffset)
    }

    private static func parseHeader(_ bytes: UnsafeRawBufferPointer, path: String, dataSize: Int) throws
        -> (entries: [String: Entry], metadata: [String: String])
    {
        let root: HeaderJSON
        do {
            var parser = HeaderJSONParser(bytes)
            root = try parser.parseDocument()
        } catch let e as HeaderJSONParser.Failure {
            throw SafetensorsError.invalidHeader(path: path, reason: "not valid JSON: \(e.message)")
        }
        guard case let .object(members) = root else {
            throw SafetensorsError.invalidHeader(path: path, reason: "the JSON header is not an object")
        }

        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        var seen = Set<String>()
        for (key, value) in members {
            guard seen.insert(key).inserted else { throw SafetensorsError.duplicateKey(path: path, key: key) }
            if key == "__metadata__" {
                guard case let .object(pairs) = value else {
                    throw SafetensorsError.invalidEntry(path: path, key: key, reason: "__metadata__ must be an object of strings")
                }
                for (k, v) in pairs {
                    guard case let .string(s) = v else {
                        throw SafetensorsError.invalidEntry(path: path, key: key, reason: "metadata value '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            entries[key] = try validateEntry(key: key, value: value, path: path, dataSize: dataSize)
        }
        try checkLayout(entries, path: path, dataSize: dataSize)
        return (entries, metadata)
    }

    private static func validateEntry(key: String, value: HeaderJSON, path: String, dataSize: Int) throws -> Entry {
        func bad(_ reason: String) -> SafetensorsError { .invalidEntry(path: path, key: key, reason: reason) }
        guard case let .object(fields) = value else { throw bad("expected an object with dtype, shape and data_offsets") }
        func field(_ name: String) throws -> HeaderJSON {
            guard let v = fields.first(where: { $0.0 == name })?.1 else { throw bad("missing '\(name)'") }
            return v
        }
        guard case let .string(dtypeName) = try field("dtype") else { throw bad("'dtype' is not a string") }
        guard case let .array(shapeItems) = try field("shape") else { throw bad("'shape' is not an array") }
        guard case let .array(offsetItems) = try field("data_offsets") else { throw bad("'data_offsets' is not an array") }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw SafetensorsError.unknownDType(path: path, key: key, dtype: dtypeName)
        }

        var shape: [Int] = []
        for item in shapeItems {
            guard case let .number(text) = item else { throw bad("'shape' holds a non-number") }
            guard let d = exactInt(text) else {
                let shownShape = "[" + shapeItems.map { $0.shortText }.joined(separator: ", ") + "]"
                throw SafetensorsError.invalidShape(path: path, key: key, shape: shownShape,
                                                    reason: "dimension \(text) is not a non-negative integer that fits in Int")
            }
            shape.append(d)
        }
        guard offsetItems.count == 2 else { throw bad("'data_offsets' must hold exactly 2 integers") }
        var offsets: [Int] = []
        for item in offsetItems {
            guard case let .number(text) = item, let v = exactInt(text) else {
                throw bad("'data_offsets' must hold non-negative integers, found \(item.shortText)")
            }
            offsets.append(v)
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard end >= begin else { throw SafetensorsError.offsetsReversed(path: path, key: key, begin: begin, end: end) }
        guard end <= dataSize else {
            throw SafetensorsError.offsetsOutOfRange(path: path, key: key, end: end, dataSize: dataSize)
        }

        // Overflow-checked: a hostile shape must not wrap around to a plausible byte count. Zero
        // dimensions are left out of the check, so that no product of dimensions a consumer forms
        // can overflow either ([2^40, 0, 2^40] holds no bytes but is refused).
        var bytes = dtype.byteSize
        for d in shape where d > 0 {
            let (p, overflow) = bytes.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw SafetensorsError.invalidShape(path: path, key: key, shape: "\(shape)", reason: "element count overflows")
            }
            bytes = p
        }
        if shape.contains(0) { bytes = 0 }
        guard bytes == end - begin else {
            throw SafetensorsError.byteCountMismatch(path: path, key: key, dtype: dtype.rawValue, shape: shape,
                                                     expected: bytes, found: end - begin)
        }
        return Entry(dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// Tensors must tile the data region exactly: no overlaps, no holes, no trailing bytes.
    private static func checkLayout(_ entries: [String: Entry], path: String, dataSize: Int) throws {
        let sorted = entries.sorted { ($0.value.begin, $0.value.end, $0.key) < ($1.value.begin, $1.value.end, $1.key) }
        var cursor = 0
        var previous: String?
        for (key, e) in sorted {
            if e.begin < cursor, let previous {
                throw SafetensorsError.overlap(path: path, key: key, other: previous)
            }
            if e.begin > cursor { throw SafetensorsError.hole(path: path, key: key, begin: e.begin, expected: cursor) }
            cursor = e.end
            previous = key
        }
        if cursor != dataSize {
            throw SafetensorsError.trailingBytes(path: path, lastKey: previous ?? "(none)", count: dataSize - cursor)
        }
    }

    /// JSON integer literal -> Int, rejecting signs, fractions, exponents and overflow.
    private static func exactInt(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)   // nil on overflow
    }
}

// MARK: - a strict JSON reader for the header

/// Parsed header JSON. Numbers keep their literal text so integers are read exactly
/// (a Double round trip would corrupt offsets above 2^53).
fileprivate enum HeaderJSON {
    case object([(String, HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    var shortText: String {
        switch self {
        case .object: return "{...}"
        case .array: return "[...]"
        case let .string(s): return "\"\(s)\""
        case let .number(n): return n
        case let .bool(b): return b ? "true" : "false"
        case .null: return "null"
        }
    }
}

/// RFC 8259 recursive-descent parser over raw bytes (the header is read straight from the mapping).
fileprivate struct HeaderJSONParser {
    struct Failure: Error { let message: String }

    private let bytes: UnsafeRawBufferPointer
    private var pos = 0
    private var depth = 0
    private static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func parseDocument() throws -> HeaderJSON {
        skipWhitespace()
        let v = try parseValue()
        skipWhitespace()
        guard pos == bytes.count else { throw fail("unexpected data after the JSON value") }
        return v
    }

    private func fail(_ what: String) -> Failure { Failure(message: "\(what) at byte \(pos)") }

    private var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipWhitespace() {
        while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { pos += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        guard peek == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
        pos += 1
    }

    private mutating func parseValue() throws -> HeaderJSON {
        guard let c = peek else { throw fail("unexpected end of header") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: String) throws {
        for b in word.utf8 {
            guard peek == b else { throw fail("invalid literal") }
            pos += 1
        }
    }

    private mutating func nest() throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth)") }
    }

    private mutating func parseObject() throws -> HeaderJSON {
        try nest(); defer { depth -= 1 }
        pos += 1
        var members: [(String, HeaderJSON)] = []
        skipWhitespace()
        if peek == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            if peek == UInt8(ascii: ",") { pos += 1; continue }
            try expect(UInt8(ascii: "}"))
            return .object(members)
        }
    }

    private mutating func parseArray() throws -> HeaderJSON {
        try nest(); defer { depth -= 1 }
        pos += 1
        var items: [HeaderJSON] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            if peek == UInt8(ascii: ",") { pos += 1; continue }
            try expect(UInt8(ascii: "]"))
            return .array(items)
        }
    }

    private mutating func parseNumber() throws -> String {
        let start = pos
        func digits() throws {
            guard let c = peek, c >= 0x30 && c <= 0x39 else { throw fail("expected a digit") }
            while let c = peek, c >= 0x30 && c <= 0x39 { pos += 1 }
        }
        if peek == UInt8(ascii: "-") { pos += 1 }
        if peek == UInt8(ascii: "0") {
            pos += 1
        } else {
            try digits()
        }
        if peek == UInt8(ascii: ".") { pos += 1; try digits() }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            try digits()
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
    }

    private mutating func hex4() throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek else { throw fail("truncated \\u escape") }
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    private mutating func parseString() throws -> String {
        pos += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            pos += 1
            switch c {
            case UInt8(ascii: "\""):
                // Raw bytes were copied through; reject anything that is not UTF-8.
                guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                guard let e = peek else { throw fail("unterminated escape") }
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        guard peek == UInt8(ascii: "\\") else { throw fail("lone high surrogate") }
                        pos += 1
                        guard peek == UInt8(ascii: "u") else { throw fail("lone high surrogate") }
                        pos += 1
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid low surrogate") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw fail("lone low surrogate")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(code)!)).utf8))
                default:
                    throw fail("invalid escape")
                }
            case 0x00..<0x20:
                throw fail("control character in string")
            default:
                out.append(c)
            }
        }
    }
}
