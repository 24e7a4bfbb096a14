import Foundation
import MixDQIO

/// An HDF5 file read through `HDF5File` as mixdq reads calibration data: the integer attribute a
/// resumed run checks, then every dataset's shape, numbers and a slice.
///
/// The HDF5 C library parses the file itself and is not instrumented, so coverage guidance only
/// sees our side; the seeds are our own valid files. Strings (datasets and attributes) are not
/// read: libhdf5 1.10.8 keeps variable-length strings in a global heap whose reader overruns,
/// crashes or hangs on a mutated file within a few hundred inputs (fuzz/library-findings/), a bug
/// of the library that no check on our side can prevent. Datasets above `maxElements` are not
/// read: an allocation that large is a libFuzzer out-of-memory report, and the reader's own
/// bound (physical memory) has its own tests.
enum HDF5FuzzTarget: FuzzTarget {
    static let name = "hdf5"
    static let maxElements = 1 << 20

    static func run(_ input: Data) {
        let url = FuzzScratch.write(input, as: "fuzz.h5")
        guard let file = try? HDF5File.open(url) else { return }
        defer { try? file.close() }
        _ = try? file.intAttribute("batches_done")
        for name in (try? file.datasetNames()) ?? [] {
            guard let shape = try? file.shape(of: name) else { continue }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            guard !overflow, count <= maxElements else { continue }
            _ = try? file.readTensor(name)
            if let first = shape.first, first > 0 {
                _ = try? file.readSlice(name, start: [0] + shape.dropFirst().map { _ in 0 }, count: [1] + shape.dropFirst())
            }
        }
    }
}
