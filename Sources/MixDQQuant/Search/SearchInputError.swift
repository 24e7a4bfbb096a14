import Foundation

/// A search input or request that cannot be used: the message names the file, layer or flag.
public struct SearchInputError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }

    /// "a, b, c, ..." for the first few names of a long list.
    public static func list(_ names: [String], limit: Int = 5) -> String {
        names.prefix(limit).joined(separator: ", ") + (names.count > limit ? ", ... (\(names.count) in all)" : "")
    }
}
