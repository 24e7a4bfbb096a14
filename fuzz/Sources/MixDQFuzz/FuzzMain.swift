import Foundation

/// One fuzz target: feeds an arbitrary byte string to one of our readers. A thrown error is the
/// expected outcome for bad input; only a trap, a sanitizer report or a hang counts as a finding.
protocol FuzzTarget {
    static var name: String { get }
    static func run(_ input: Data)
}

let fuzzTargets: [FuzzTarget.Type] = [
    SafetensorsFuzzTarget.self, ConfigJSONFuzzTarget.self, MixDQYAMLFuzzTarget.self,
    TokenizerFuzzTarget.self, HDF5FuzzTarget.self, QuantizedUNetFuzzTarget.self, TorchListFuzzTarget.self,
]

/// `MixDQFuzz TARGET [libFuzzer options] [CORPUS...]`.
///
/// Built by `scripts/fuzz.sh` with `-sanitize=fuzzer,address -DFUZZING`, this hands the remaining
/// arguments to libFuzzer. In an ordinary build it replays the given files and folders through
/// the target instead, which reproduces a saved crash without the sanitizer toolchain.
@main
struct MixDQFuzz {
    static func main() {
        let args = CommandLine.arguments
        if args.count >= 2, let target = fuzzTargets.first(where: { $0.name == args[1] }) {
            selectedTarget = target
            // libFuzzer's -fork mode starts workers with its own flags only: they find the
            // target here.
            setenv(targetVariable, target.name, 1)
            #if FUZZING
            exit(runLibFuzzer(dropping: 1))
            #else
            exit(replay(target, paths: Array(args.dropFirst(2))))
            #endif
        }
        #if FUZZING
        if let name = ProcessInfo.processInfo.environment[targetVariable],
           let target = fuzzTargets.first(where: { $0.name == name }) {
            selectedTarget = target
            exit(runLibFuzzer(dropping: nil))
        }
        #endif
        let names = fuzzTargets.map { $0.name }.joined(separator: ", ")
        FileHandle.standardError.write(Data("usage: MixDQFuzz TARGET [libFuzzer options] [CORPUS...]\ntargets: \(names)\n".utf8))
        exit(2)
    }
}

let targetVariable = "MIXDQ_FUZZ_TARGET"

/// libFuzzer calls back through a C function pointer, which cannot capture the chosen target.
nonisolated(unsafe) var selectedTarget: FuzzTarget.Type = SafetensorsFuzzTarget.self

/// Runs every file under `paths` through `target`; a crash stops the process like under libFuzzer.
func replay(_ target: FuzzTarget.Type, paths: [String]) -> Int32 {
    var files: [URL] = []
    for path in paths {
        let url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            FileHandle.standardError.write(Data("\(path): no such file or folder\n".utf8))
            return 1
        }
        if isDir.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            files += names.sorted().map { url.appendingPathComponent($0) }
        } else {
            files.append(url)
        }
    }
    for file in files {
        guard let data = try? Data(contentsOf: file) else {
            FileHandle.standardError.write(Data("\(file.path): cannot read\n".utf8))
            return 1
        }
        target.run(data)
    }
    print("\(target.name): replayed \(files.count) input(s) without a crash")
    return 0
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// Runs libFuzzer's driver on the command line minus the target name (libFuzzer takes every
/// non-flag argument for a corpus folder).
private func runLibFuzzer(dropping index: Int?) -> Int32 {
    var argv = Array(UnsafeBufferPointer(start: CommandLine.unsafeArgv, count: Int(CommandLine.argc)))
    if let index { argv.remove(at: index) }
    argv.append(nil)
    var argc = Int32(argv.count - 1)
    return argv.withUnsafeMutableBufferPointer { buf in
        var base: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buf.baseAddress
        return LLVMFuzzerRunDriver(&argc, &base) { bytes, count in
            selectedTarget.run(bytes.map { Data(bytes: $0, count: count) } ?? Data())
            return 0
        }
    }
}
#endif
