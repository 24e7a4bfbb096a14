import ArgumentParser

/// A failure found while running (bad input file, missing tensor): printed as is, exit status 1.
/// (`ValidationError` is for argument checks in `validate()`; it prints the usage line.)
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
