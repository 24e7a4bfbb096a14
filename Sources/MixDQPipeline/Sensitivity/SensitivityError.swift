import Foundation

/// A sensitivity run or merge that cannot proceed: the message names the file, layer or flag.
public struct SensitivityError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}
