import ArgumentParser

struct CalibDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "calib-data", abstract: "Record calibration data from the FP pipeline (gen_calib_data.py).")
    @Argument(parsing: .allUnrecognized) var passthrough: [String] = []
    func run() throws { throw NotBuiltYet(command: "calib-data") }
}
