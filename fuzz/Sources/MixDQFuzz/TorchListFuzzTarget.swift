import Foundation
import MixDQIO

/// A whole torch.save'd file as `--act-protect` reads it: the zip container (ZIPFoundation) and the
/// strict pickle reader of a list of strings behind it.
enum TorchListFuzzTarget: FuzzTarget {
    static let name = "torch-list"

    static func run(_ input: Data) {
        _ = try? TorchSavedList.read(FuzzScratch.write(input, as: "fuzz.pt"))
        _ = try? PickledStringList.parse(input, source: "fuzz.pkl")
    }
}
