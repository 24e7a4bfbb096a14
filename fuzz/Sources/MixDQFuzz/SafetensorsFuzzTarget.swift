import Foundation
import MixDQIO

/// A whole safetensors file: the header-length prefix, the JSON header and the tensor table
/// (dtypes, shapes, offsets, layout), then for a file that validates, every tensor as float32.
enum SafetensorsFuzzTarget: FuzzTarget {
    static let name = "safetensors"

    static func run(_ input: Data) {
        let valid = input.withUnsafeBytes { bytes in
            (try? SafetensorsFile.readTable(bytes, path: "fuzz.safetensors")) != nil
        }
        guard valid else { return }
        // Opening maps the file and reads through the same table; reading converts every tensor.
        let url = FuzzScratch.write(input, as: "fuzz.safetensors")
        guard let file = try? SafetensorsFile(url) else {
            fatalError("readTable accepted an input that SafetensorsFile(path:) rejects")
        }
        for key in file.keys {
            _ = try? file.rawBytes(key)
            _ = try? file.floatTensor(key, copy: true)
        }
    }
}
