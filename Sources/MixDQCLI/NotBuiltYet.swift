import ArgumentParser

/// Raised by subcommands whose capability has not landed: says so and exits non-zero.
struct NotBuiltYet: Error, CustomStringConvertible {
    let command: String
    var description: String { "mixdq \(command) is not built yet in this version of mixdq" }
}
