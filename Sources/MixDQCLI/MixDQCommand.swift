import ArgumentParser
import MixDQCompute

@main
struct MixDQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mixdq",
        abstract: "Quantize few-step text-to-image diffusion models (SDXL-Turbo) with MixDQ and run them fast.",
        subcommands: [FPInferCommand.self, DefaultModelCommand.self, CalibDataCommand.self, PTQCommand.self, QuantizeCommand.self, SearchCommand.self, EvalCommand.self, EvalTableCommand.self,
                      InferCommand.self, ForwardCommand.self, BenchCommand.self, CPUInfoCommand.self])

    static func main() {
        ComputeRuntime.ensurePassiveOpenMPWait()
        ComputeRuntime.configure()
        var command: ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }
        do { ConvolutionAlgorithm.current = try ConvolutionAlgorithm.fromEnvironment() } catch { exit(withError: error) }
        do { try command.run() } catch { exit(withError: error) }
    }
}
