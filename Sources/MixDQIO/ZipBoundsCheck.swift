import Foundation

/// Checks, before ZIPFoundation opens a zip file, that every offset and size its directory
/// records state lies inside the file. ZIPFoundation 0.9.20 converts ZIP64 offsets to `off_t` and
/// adds them up unchecked, so a hostile value above Int64.max traps the process (found by
/// fuzzing); torch.save always writes ZIP64 end records, so they cannot simply be refused.
/// This reads only the records' fixed fields (APPNOTE 4.3.12-4.3.16, 4.5.3); the archive itself
/// is still read by ZIPFoundation.
enum ZipBoundsCheck {
    struct Failure: Error { let reason: String }

    private struct Bytes {
        let b: [UInt8]
        func uint(_ at: Int, _ width: Int, _ what: String) throws -> UInt64 {
            guard at >= 0, width <= b.count, at <= b.count - width else {
                throw Failure(reason: "\(what) at byte \(at) runs past the end of the file")
            }
            return (0..<width).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(b[at + $1]) }
        }
    }

    static let endSignature: UInt64 = 0x0605_4B50, zip64EndSignature: UInt64 = 0x0606_4B50
    static let zip64LocatorSignature: UInt64 = 0x0706_4B50, centralSignature: UInt64 = 0x0201_4B50
    static let localSignature: UInt64 = 0x0403_4B50

    /// Throws a Failure naming the first record that points outside `data` or has more than
    /// `maxEntries` entries.
    static func check(_ data: [UInt8], maxEntries: Int) throws {
        let bytes = Bytes(b: data)
        let size = UInt64(data.count)
        func inside(_ value: UInt64, _ what: String) throws {
            guard value <= size else { throw Failure(reason: "\(what) is \(value), past the end of the file (\(size) bytes)") }
        }
        /// 32-bit fields equal to 0xFFFFFFFF mean "see the ZIP64 record", which is checked instead.
        func inside32(_ value: UInt64, _ what: String) throws {
            if value != 0xFFFF_FFFF { try inside(value, what) }
        }
        // The end-of-central-directory record: the last signature within its maximal distance from the end.
        let lowest = max(0, data.count - 22 - 0xFFFF)
        guard data.count >= 22,
              let end = stride(from: data.count - 22, through: lowest, by: -1).first(where: { (try? bytes.uint($0, 4, "")) == endSignature })
        else { throw Failure(reason: "no end-of-central-directory record") }
        var directories: [(count: UInt64, offset: UInt64)] = []
        let count32 = try bytes.uint(end + 10, 2, "entry count"), offset32 = try bytes.uint(end + 16, 4, "directory offset")
        if count32 != 0xFFFF && offset32 != 0xFFFF_FFFF { directories.append((count32, offset32)) }
        try inside32(try bytes.uint(end + 12, 4, "directory size"), "the central directory size")
        if end >= 20, try bytes.uint(end - 20, 4, "ZIP64 locator") == zip64LocatorSignature {
            let record = try bytes.uint(end - 12, 8, "ZIP64 end record offset")
            try inside(record, "the ZIP64 end record offset")
            let at = Int(record)
            guard try bytes.uint(at, 4, "ZIP64 end record") == zip64EndSignature else {
                throw Failure(reason: "no ZIP64 end record where its locator points (byte \(at))")
            }
            try inside(try bytes.uint(at + 40, 8, "ZIP64 directory size"), "the ZIP64 central directory size")
            directories.append((try bytes.uint(at + 32, 8, "ZIP64 entry count"), try bytes.uint(at + 48, 8, "ZIP64 directory offset")))
        }
        for (count, offset) in directories {
            guard count <= UInt64(maxEntries) else { throw Failure(reason: "\(count) entries (more than \(maxEntries))") }
            try inside(offset, "the central directory offset")
            var at = Int(offset)
            for _ in 0..<Int(count) {
                guard try bytes.uint(at, 4, "central directory entry") == centralSignature else {
                    throw Failure(reason: "no central directory entry at byte \(at)")
                }
                try inside32(try bytes.uint(at + 20, 4, "compressed size"), "an entry's compressed size")
                try inside32(try bytes.uint(at + 24, 4, "uncompressed size"), "an entry's uncompressed size")
                let name = Int(try bytes.uint(at + 28, 2, "name length")), extra = Int(try bytes.uint(at + 30, 2, "extra length"))
                let comment = Int(try bytes.uint(at + 32, 2, "comment length"))
                let local = try bytes.uint(at + 42, 4, "local header offset")
                try inside32(local, "a local header offset")
                try checkExtra(bytes, from: at + 46 + name, length: extra, inside: inside)
                if local != 0xFFFF_FFFF { try checkLocalHeader(bytes, at: Int(local), inside: inside32) }
                at += 46 + name + extra + comment
            }
        }
    }

    /// ZIP64 extended information (header 0x0001) holds 8-byte sizes and offsets: each must fit the file.
    private static func checkExtra(_ bytes: Bytes, from start: Int, length: Int, inside: (UInt64, String) throws -> Void) throws {
        var at = start
        while at + 4 <= start + length {
            let id = try bytes.uint(at, 2, "extra field"), fieldSize = Int(try bytes.uint(at + 2, 2, "extra field size"))
            if id == 0x0001 {
                for k in 0..<(fieldSize / 8) where at + 4 + 8 * (k + 1) <= start + length {
                    try inside(try bytes.uint(at + 4 + 8 * k, 8, "ZIP64 extra field"), "a ZIP64 size or offset")
                }
            }
            at += 4 + fieldSize
        }
    }

    private static func checkLocalHeader(_ bytes: Bytes, at: Int, inside: (UInt64, String) throws -> Void) throws {
        guard try bytes.uint(at, 4, "local header") == localSignature else { throw Failure(reason: "no local header at byte \(at)") }
        try inside(try bytes.uint(at + 18, 4, "compressed size"), "a local header's compressed size")
        try inside(try bytes.uint(at + 22, 4, "uncompressed size"), "a local header's uncompressed size")
        let name = Int(try bytes.uint(at + 26, 2, "name length")), extra = Int(try bytes.uint(at + 28, 2, "extra length"))
        try inside(UInt64(at + 30 + name + extra), "a local header's end")
        try checkExtra(bytes, from: at + 30 + name, length: extra, inside: inside)
    }
}
