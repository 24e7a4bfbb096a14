import Foundation

/// An input of `mixdq eval` that cannot be used, naming the file (and line) at fault.
public struct EvaluationInputError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
    public var errorDescription: String? { description }
}
