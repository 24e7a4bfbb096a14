import ArgumentParser

/// Raised by subcommands whose capability has not landed: says so and exits non-zero.
struct NotBuiltYet: Error, CustomStringConvertible {
    let command: String
    var description: String { "mixdq \(command) is not built yet in this version of mixdq" }
}

/// A failure found while running (bad input file, missing tensor): printed as is, exit status 1.
/// (`ValidationError` is for argument checks in `validate()`; it prints the usage line.)
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
