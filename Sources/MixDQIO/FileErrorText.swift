import Foundation

/// Plain words for a file-system error, without Foundation's "The operation could not be completed
/// (NSCocoaErrorDomain ...)" text: the POSIX reason when one is known, else a short description of
/// the Cocoa error code. Callers put the path in front.
public enum FileErrorText {
    public static func reason(_ error: Error) -> String {
        if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if let cocoa = error as? CocoaError {
            switch cocoa.code {
            case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or directory"
            case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
            case .fileWriteOutOfSpace: return "no space left on device"
            case .fileWriteFileExists: return "a file with that name already exists"
            case .fileWriteVolumeReadOnly: return "read-only file system"
            case .fileReadInapplicableStringEncoding, .fileWriteInapplicableStringEncoding: return "not valid UTF-8 text"
            case .fileReadCorruptFile: return "the file is damaged or not in the expected format"
            case .fileReadTooLarge: return "the file is too large"
            case .fileReadUnknown: return "read error"
            case .fileWriteUnknown: return "write error"
            default: break
            }
        }
        return "error \(ns.code)"
    }

    /// What JSONSerialization found wrong ("Unexpected character ... around line 1, column 5"),
    /// without the Cocoa error code.
    public static func jsonReason(_ error: Error) -> String {
        let ns = error as NSError
        if let detail = ns.userInfo[NSDebugDescriptionErrorKey] as? String, !detail.isEmpty { return detail }
        return "malformed JSON"
    }
}
