import Foundation
import XCTest
import MixDQIO

/// Files found by (or built after) the hdf5 fuzz target: each must give an error naming the file
/// and the dataset, never a trap or an endless walk. Fixtures: Tests/Fixtures/hdf5/generate.py.
final class HDF5HostileFileTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/hdf5")

    private func assertFails(_ body: @autoclosure () throws -> Any, naming fragments: [String],
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue(error is HDF5Error, "\(type(of: error))", file: file, line: line)
            let text = error.localizedDescription
            for f in fragments {
                XCTAssertTrue(text.contains(f), "'\(text)' does not contain '\(f)'", file: file, line: line)
            }
        }
    }

    func testHardLinkCycleIsListedOnce() throws {
        // g/loop is a hard link to g itself; h5py's visit lists g/x once, and so must we.
        let f = try HDF5File.open(Self.fixtures.appendingPathComponent("link_cycle.h5"))
        XCTAssertEqual(try f.datasetNames(), ["g/x"])
        XCTAssertEqual(try f.readFloats("g/x").values, [1, 2])
    }

    func testShapeWhoseElementCountOverflowsIsAnError() throws {
        let url = Self.fixtures.appendingPathComponent("huge_shapes.h5")
        let f = try HDF5File.open(url)
        // 2^40 x 2^40 elements: the shape itself is refused, before any product can trap.
        assertFails(try f.readTensor("overflowing"), naming: [url.path, "overflowing", "too many elements"])
        assertFails(try f.shape(of: "overflowing"), naming: [url.path, "overflowing", "too many elements"])
        assertFails(try f.readStrings("overflowing"), naming: [url.path, "overflowing"])
    }

    func testDatasetLargerThanMemoryIsAnError() throws {
        let url = Self.fixtures.appendingPathComponent("huge_shapes.h5")
        let f = try HDF5File.open(url)
        // 2^50 float32 values (4 PiB) from a 2 KB file: an error instead of an aborted allocation.
        XCTAssertEqual(try f.shape(of: "beyond_memory"), [1 << 25, 1 << 25])
        assertFails(try f.readTensor("beyond_memory"), naming: [url.path, "beyond_memory", "memory"])
        assertFails(try f.readSlice("beyond_memory", start: [0, 0], count: [1 << 25, 1 << 25]),
                    naming: [url.path, "beyond_memory", "memory"])
        // 2^40 fixed-length strings of 1000 bytes.
        assertFails(try f.readStrings("many_strings"), naming: [url.path, "many_strings", "memory"])
        // A small slice of the same datasets still reads (unwritten chunks hold the fill value 0).
        XCTAssertEqual(try f.readSlice("beyond_memory", start: [5, 7], count: [1, 2]).scalars, [0, 0])
        XCTAssertEqual(try f.readFloats("small").values, [3])
    }

    func testNumbersWiderThan16BytesAreRefused() throws {
        // Found by the hdf5 fuzz target as a 4 GB "float": HDF5 allocates its conversion buffer
        // by the element size before reading anything, so the size is checked first.
        let url = Self.fixtures.appendingPathComponent("wide_element.h5")
        let f = try HDF5File.open(url)
        XCTAssertEqual(try f.shape(of: "wide_ints"), [2])
        assertFails(try f.readTensor("wide_ints"), naming: [url.path, "wide_ints", "1048576 bytes each"])
        assertFails(try f.readSlice("wide_ints", start: [0], count: [1]), naming: [url.path, "wide_ints", "1048576 bytes each"])
    }

    /// Reads every dataset of a fuzz-found file: at least one read must fail with `message`
    /// and the file's path. A newer libhdf5 may refuse the file on open, which is as good.
    private func assertSomeReadFails(_ name: String, with message: String, file: StaticString = #filePath, line: UInt = #line) {
        let url = Self.fixtures.appendingPathComponent(name)
        let f: HDF5File
        do {
            f = try HDF5File.open(url)
        } catch {
            XCTAssertTrue(error is HDF5Error && error.localizedDescription.contains(url.path), "\(error)", file: file, line: line)
            return
        }
        var errors: [String] = []
        for name in (try? f.datasetNames()) ?? [] {
            do { _ = try f.readTensor(name) } catch { errors.append(error.localizedDescription) }
        }
        XCTAssertTrue(errors.contains { $0.contains(message) && $0.contains(url.path) }, "\(errors)", file: file, line: line)
    }

    func testCompactDataShorterThanItsShapeIsAnError() {
        // Found by the hdf5 fuzz target: a compact dataset whose stored bytes do not cover its
        // shape. libhdf5 1.10 reads past them (SEGV in H5D__select_read).
        assertSomeReadFails("compact_size_mismatch.h5", with: "compact storage holds")
    }

    func testNumberBitsOutsideTheirBytesAreAnError() {
        // Found by the hdf5 fuzz target: an integer type whose precision + offset exceed its
        // size. libhdf5 1.10 converts it to float by reading past the data (SIGBUS in H5T__bit_copy).
        assertSomeReadFails("bits_outside_bytes.h5", with: "which do not fit in")
    }

    func testSliceBoundsDoNotOverflow() throws {
        let url = Self.fixtures.appendingPathComponent("huge_shapes.h5")
        let f = try HDF5File.open(url)
        // start + count past Int.max must be an out-of-shape error, not an arithmetic trap.
        assertFails(try f.readSlice("small", start: [Int.max], count: [1]), naming: [url.path, "small", "outside"])
    }
}
