import Foundation

/// Reads a pickle that holds exactly one Python list of `str`, as `torch.save` writes it into
/// `data.pkl` (protocol 2: PROTO, EMPTY_LIST, BINPUT, MARK, BINUNICODE..., APPENDS, STOP).
///
/// This is not an unpickler: only the opcodes a list of strings can produce are accepted (with
/// protocol 4's framing and short strings, which `pickle_protocol=4` gives). Anything else (a
/// dict, numbers, None, a tuple, a nested list, a tensor's persistent id, a class reference) is an
/// error that says what the file holds instead, so no object is ever built from untrusted bytes.
public enum PickledStringList {
    public struct Invalid: Error, CustomStringConvertible, LocalizedError, Equatable {
        public let description: String
        public var errorDescription: String? { description }
    }

    private enum Value {
        case mark
        case list([String])
        case string(String)
    }

    /// Upper bound on memo indices: a list of layer names never needs more than a few thousand.
    static let maxMemoIndex = 1 << 20

    /// `source` names the file (and member) in errors.
    public static func parse(_ bytes: Data, source: String) throws -> [String] {
        let b = [UInt8](bytes)
        var pos = 0
        var stack: [Value] = []
        var memo: [Int: Value] = [:]
        var sawList = false

        func fail(_ message: String) -> Invalid {
            Invalid(description: "\(source): \(message); expected a pickled list of layer-name strings")
        }
        func take(_ n: Int, for what: String) throws -> ArraySlice<UInt8> {
            guard n >= 0, n <= b.count - pos else {
                throw fail("truncated: \(what) at byte \(pos) needs \(n) byte(s), \(b.count - pos) left")
            }
            defer { pos += n }
            return b[pos..<(pos + n)]
        }
        func littleEndian(_ n: Int, for what: String) throws -> UInt64 {
            try take(n, for: what).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        func length(_ n: Int, for what: String) throws -> Int {
            let v = try littleEndian(n, for: what)
            guard v <= UInt64(b.count - pos) else {
                throw fail("truncated: \(what) at byte \(pos - n) announces \(v) byte(s), \(b.count - pos) left")
            }
            return Int(v)
        }
        func string(_ n: Int, at start: Int) throws -> String {
            guard let s = String(bytes: try take(n, for: "a string"), encoding: .utf8) else {
                throw fail("the string at byte \(start) is not valid UTF-8")
            }
            return s
        }
        func memoize(_ index: Int, at start: Int) throws {
            guard index <= maxMemoIndex else { throw fail("memo index \(index) at byte \(start) is out of range") }
            guard let top = stack.last, !isMark(top) else { throw fail("a memo store at byte \(start) with nothing to store") }
            memo[index] = top
        }

        guard b.count >= 2, b[0] == 0x80 else {
            throw fail("no pickle protocol header (first byte \(b.first.map { hex($0) } ?? "none"))")
        }
        while true {
            let start = pos
            guard pos < b.count else { throw fail("ends at byte \(pos) without a STOP opcode") }
            let op = b[pos]
            pos += 1
            switch op {
            case 0x80:  // PROTO
                let version = try take(1, for: "the protocol number").first!
                guard start == 0, (2...5).contains(version) else {
                    throw fail("pickle protocol \(version) at byte \(start) (torch.save writes protocol 2)")
                }
            case 0x95:  // FRAME (protocol 4): a length prefix for the bytes that follow; nothing to build.
                _ = try length(8, for: "a frame length")
            case 0x5D:  // EMPTY_LIST
                guard !sawList else { throw fail("a second list at byte \(start) (nested lists are not layer names)") }
                sawList = true
                stack.append(.list([]))
            case 0x28:  // MARK
                stack.append(.mark)
            case 0x58:  // BINUNICODE
                let n = try length(4, for: "a string length")
                stack.append(.string(try string(n, at: start)))
            case 0x8C:  // SHORT_BINUNICODE (protocol 4)
                let n = try length(1, for: "a string length")
                stack.append(.string(try string(n, at: start)))
            case 0x8D:  // BINUNICODE8 (protocol 4)
                let n = try length(8, for: "a string length")
                stack.append(.string(try string(n, at: start)))
            case 0x71:  // BINPUT
                try memoize(Int(try littleEndian(1, for: "a memo index")), at: start)
            case 0x72:  // LONG_BINPUT
                try memoize(Int(try littleEndian(4, for: "a memo index")), at: start)
            case 0x94:  // MEMOIZE (protocol 4): the next free index
                try memoize(memo.count, at: start)
            case 0x68, 0x6A:  // BINGET, LONG_BINGET: the same string object stored twice
                let index = Int(try littleEndian(op == 0x68 ? 1 : 4, for: "a memo index"))
                guard let value = memo[index] else { throw fail("memo index \(index) at byte \(start) was never stored") }
                guard case .string = value else { throw fail("a reference back to the list at byte \(start) (a list inside itself)") }
                stack.append(value)
            case 0x61:  // APPEND
                guard stack.count >= 2, case let .string(s) = stack.removeLast(), case var .list(items) = stack.removeLast() else {
                    throw fail("an APPEND at byte \(start) that does not add a string to a list")
                }
                items.append(s)
                stack.append(.list(items))
            case 0x65:  // APPENDS
                guard let markIndex = stack.lastIndex(where: isMark), markIndex >= 1, case var .list(items) = stack[markIndex - 1] else {
                    throw fail("an APPENDS at byte \(start) without a list and a MARK before it")
                }
                for v in stack[(markIndex + 1)...] {
                    guard case let .string(s) = v else { throw fail("an APPENDS at byte \(start) that adds something other than strings") }
                    items.append(s)
                }
                stack.removeSubrange((markIndex - 1)...)
                stack.append(.list(items))
            case 0x2E:  // STOP
                guard pos == b.count else { throw fail("\(b.count - pos) byte(s) after the STOP opcode at byte \(start)") }
                guard stack.count == 1, case let .list(items) = stack[0] else {
                    throw fail("the pickle's result is \(stack.count == 1 ? describe(stack[0]) : "not one object") (STOP at byte \(start))")
                }
                return items
            default:
                throw fail("\(opcodeMeaning(op)) (pickle opcode \(hex(op)) at byte \(start))")
            }
        }
    }

    private static func isMark(_ v: Value) -> Bool { if case .mark = v { return true } else { return false } }

    private static func describe(_ v: Value) -> String {
        switch v {
        case .mark: return "a MARK"
        case .list: return "a list"
        case .string: return "a single string, not a list"
        }
    }

    private static func hex(_ b: UInt8) -> String {
        let printable = (0x21...0x7E).contains(b) ? " '\(Character(UnicodeScalar(b)))'" : ""
        let digits = String(b, radix: 16, uppercase: true)
        return "0x" + (digits.count < 2 ? "0" : "") + digits + printable
    }

    /// What an opcode we refuse would have built, in words a user recognises.
    static func opcodeMeaning(_ op: UInt8) -> String {
        switch op {
        case 0x7D, 0x64: return "holds a dict"
        case 0x29, 0x74, 0x85, 0x86, 0x87: return "holds a tuple"
        case 0x4A, 0x4B, 0x4D, 0x49, 0x4C, 0x8A, 0x8B: return "holds an integer"
        case 0x47, 0x46: return "holds a float"
        case 0x4E: return "holds None"
        case 0x88, 0x89: return "holds a bool"
        case 0x51, 0x50: return "holds a persistent id (a tensor or storage)"
        case 0x63, 0x93: return "refers to a Python class or function"
        case 0x52, 0x81, 0x92, 0x62, 0x69, 0x6F: return "builds an object"
        case 0x42, 0x43, 0x8E, 0x96, 0x97: return "holds bytes"
        case 0x8F, 0x90, 0x91: return "holds a set"
        case 0x6C: return "uses protocol-0 list opcodes"
        case 0x56, 0x53, 0x54, 0x55: return "holds a protocol-0/1 string"
        default: return "holds an opcode outside a list of strings"
        }
    }
}
