import Foundation
import MixDQCompute
import XCTest
import MixDQIO

final class HDF5Tests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixdq-hdf5-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private static let prompts = ["A cat on a mat", "café crème ☕", "日本語のキャプション", "", "rocket 🚀 launch"]
    private static let values = (0..<120).map { Float($0) * 0.5 - 3 }

    /// A file with every kind of content, written through `HDF5Writer`.
    private func writeSample(_ url: URL) throws {
        let writer = try HDF5Writer(target: url)
        try writer.file.write("added_cond_kwargs/text_embeds", tensor: Tensor(shape: [2, 3, 4, 5], values: Self.values))
        try writer.file.write("ts", shape: [1, 2], values: [999, 999])
        try writer.file.writeStrings("prompts", Self.prompts)
        try writer.file.setAttribute("mixdq_version", "0.1 (ünïcode)")
        try writer.file.setAttribute("n_done", 7)
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path), "target must not exist before finish()")
        try writer.finish()
        XCTAssertFalse(FileManager.default.fileExists(atPath: writer.partialURL.path))
    }

    func testNestedFloatRoundTrip() throws {
        let url = dir.appendingPathComponent("sub/calib.h5")
        try writeSample(url)
        let f = try HDF5File.open(url)
        let (shape, values) = try f.readFloats("added_cond_kwargs/text_embeds")
        XCTAssertEqual(shape, [2, 3, 4, 5])
        XCTAssertEqual(values, Self.values)
        XCTAssertEqual(try f.shape(of: "ts"), [1, 2])
        XCTAssertEqual(try f.datasetNames(), ["added_cond_kwargs/text_embeds", "prompts", "ts"])
        XCTAssertTrue(f.exists("added_cond_kwargs"))
        XCTAssertFalse(f.exists("added_cond_kwargs/time_ids"))
        XCTAssertFalse(f.exists("nope/deeper"))
        let slice = try f.readSlice("added_cond_kwargs/text_embeds", start: [1, 2, 0, 0], count: [1, 1, 2, 5])
        XCTAssertEqual(slice.shape, [1, 1, 2, 5])
        XCTAssertEqual(slice.scalars, Array(Self.values[(60 + 40)..<(60 + 50)]))
        XCTAssertThrowsError(try f.readFloats("prompts")) { error in
            XCTAssertTrue("\(error)".contains("prompts"), "\(error)")
        }
        XCTAssertThrowsError(try f.readFloats("missing/ds")) { error in
            XCTAssertTrue("\(error)".contains("missing/ds") && "\(error)".contains(url.path), "\(error)")
        }
        try f.close()
        try f.close()  // harmless twice
        XCTAssertThrowsError(try f.readFloats("ts"))
    }

    func testUnicodeStrings() throws {
        let url = dir.appendingPathComponent("s.h5")
        try writeSample(url)
        let f = try HDF5File.open(url)
        XCTAssertEqual(try f.readStrings("prompts"), Self.prompts)
        XCTAssertThrowsError(try f.readStrings("ts"))
    }

    func testAttributes() throws {
        let url = dir.appendingPathComponent("a.h5")
        try writeSample(url)
        let f = try HDF5File.open(url)
        XCTAssertEqual(try f.attribute("mixdq_version"), "0.1 (ünïcode)")
        XCTAssertEqual(try f.intAttribute("n_done"), 7)
        XCTAssertNil(try f.attribute("absent"))
        XCTAssertThrowsError(try f.intAttribute("mixdq_version"))
        XCTAssertThrowsError(try f.setAttribute("x", "y")) { error in
            XCTAssertTrue("\(error)".contains("read-only"), "\(error)")
        }
    }

    func testAttributeReplaceAndOnDataset() throws {
        let f = try HDF5File.create(dir.appendingPathComponent("r.h5"))
        try f.write("g/x", shape: [3], values: [1, 2, 3])
        try f.setAttribute("note", "first")
        try f.setAttribute("note", "second")
        try f.setAttribute("unit", "latent", on: "g/x")
        XCTAssertEqual(try f.attribute("note"), "second")
        XCTAssertEqual(try f.attribute("unit", on: "g/x"), "latent")
        XCTAssertThrowsError(try f.setAttribute("unit", "x", on: "g/none"))
    }

    func testSliceWritesAndResume() throws {
        let url = dir.appendingPathComponent("calib.h5")
        // First run: one batch of two, then "crash" (no finish()).
        do {
            let w = try HDF5Writer(target: url)
            try w.file.createFloatDataset("xs", shape: [2, 4, 3])
            try w.file.writeSlice("xs", start: [0, 0], data: Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
            try w.file.setAttribute("done", 1)
            try w.file.flush()
            XCTAssertThrowsError(try w.file.writeSlice("xs", start: [1, 3], data: Tensor(shape: [2, 3], repeating: 1))) { error in
                XCTAssertTrue("\(error)".contains("'xs'") && "\(error)".contains("outside"), "\(error)")
            }
            XCTAssertThrowsError(try w.file.createFloatDataset("xs", shape: [2, 4, 4])) { error in
                XCTAssertTrue("\(error)".contains("xs"), "\(error)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
        // Second run resumes the partial file.
        let w = try HDF5Writer(target: url, resume: true)
        XCTAssertTrue(w.resumed)
        XCTAssertEqual(try w.file.intAttribute("done"), 1)
        try w.file.createFloatDataset("xs", shape: [2, 4, 3])  // same shape: kept
        try w.file.writeSlice("xs", start: [1, 2], data: Tensor(shape: [2, 3], values: [7, 8, 9, 10, 11, 12]))
        try w.file.setAttribute("done", 2)
        try w.finish()

        let f = try HDF5File.open(url)
        let (shape, v) = try f.readFloats("xs")
        XCTAssertEqual(shape, [2, 4, 3])
        var expected = [Float](repeating: 0, count: 24)
        expected.replaceSubrange(0..<6, with: [1, 2, 3, 4, 5, 6])
        expected.replaceSubrange(18..<24, with: [7, 8, 9, 10, 11, 12])
        XCTAssertEqual(v, expected)
        XCTAssertEqual(try f.intAttribute("done"), 2)
    }

    func testFinishReplacesExistingTarget() throws {
        let url = dir.appendingPathComponent("x.h5")
        try writeSample(url)
        let w = try HDF5Writer(target: url)
        try w.file.write("only", shape: [], values: [42])
        try w.finish()
        let f = try HDF5File.open(url)
        XCTAssertEqual(try f.datasetNames(), ["only"])
        XCTAssertEqual(try f.readFloats("only").values, [42])
        XCTAssertEqual(try f.shape(of: "only"), [])
    }

    func testNonHDF5FileErrorNamesPath() throws {
        let url = dir.appendingPathComponent("fake.h5")
        try "not an hdf5 file at all".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try HDF5File.open(url)) { error in
            let text = "\(error)"
            XCTAssertTrue(error is HDF5Error)
            XCTAssertTrue(text.contains(url.path), text)
            XCTAssertTrue(text.contains("HDF5"), text)
        }
        let missing = dir.appendingPathComponent("missing.h5")
        XCTAssertThrowsError(try HDF5File.open(missing)) { error in
            XCTAssertTrue("\(error)".contains(missing.path) && "\(error)".contains("no such file"), "\(error)")
        }
        XCTAssertThrowsError(try HDF5File.create(dir.appendingPathComponent("no/such/folder/x.h5"))) { error in
            XCTAssertTrue("\(error)".contains("no/such/folder/x.h5"), "\(error)")
        }
    }

    // MARK: Interoperability with h5py (only where the reference venv exists; CI skips)

    private func runPython(_ script: String, _ args: [String]) throws -> String {
        try ReferencePython.run(script, args, modules: ["h5py", "numpy"])
    }

    func testH5pyReadsOurFile() throws {
        let url = dir.appendingPathComponent("interop.h5")
        try writeSample(url)
        let script = """
        import sys, h5py, numpy as np
        f = h5py.File(sys.argv[1], "r")
        x = f["added_cond_kwargs/text_embeds"]
        assert x.shape == (2, 3, 4, 5) and x.dtype == np.float32, (x.shape, x.dtype)
        assert np.array_equal(x[...].ravel(), np.arange(120, dtype=np.float32) * 0.5 - 3)
        assert f["ts"][...].tolist() == [[999.0, 999.0]]
        p = f["prompts"]
        assert h5py.check_string_dtype(p.dtype).encoding == "utf-8"
        got = list(p.asstr()[...])
        want = ["A cat on a mat", "café crème ☕", "日本語のキャプション", "", "rocket 🚀 launch"]
        assert got == want, got
        assert f.attrs["mixdq_version"] == "0.1 (ünïcode)", f.attrs["mixdq_version"]
        assert int(f.attrs["n_done"]) == 7
        print("ok")
        """
        let output = try runPython(script, [url.path])
        XCTAssertTrue(output.contains("ok"), output)
    }

    func testWeReadH5pyFile() throws {
        let url = dir.appendingPathComponent("from_h5py.h5")
        let script = """
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], "w") as f:
            f["a/b/f64"] = np.arange(6, dtype=np.float64).reshape(2, 3) / 4
            f["i32"] = np.array([1, -2, 3], dtype=np.int32)
            f["vlen"] = np.array(["héllo", "wörld"], dtype=h5py.string_dtype())
            f["fixed"] = np.array([b"ab", b"cde"], dtype="S4")
            f.attrs["version"] = "h5py-written"
            f.attrs["count"] = np.int64(5)
        print("ok")
        """
        _ = try runPython(script, [url.path])
        let f = try HDF5File.open(url)
        XCTAssertEqual(try f.datasetNames(), ["a/b/f64", "fixed", "i32", "vlen"])
        XCTAssertEqual(try f.readFloats("a/b/f64").values, [0, 0.25, 0.5, 0.75, 1, 1.25])
        XCTAssertEqual(try f.readFloats("i32").values, [1, -2, 3])
        XCTAssertEqual(try f.readStrings("vlen"), ["héllo", "wörld"])
        XCTAssertEqual(try f.readStrings("fixed"), ["ab", "cde"])
        XCTAssertEqual(try f.attribute("version"), "h5py-written")
        XCTAssertEqual(try f.intAttribute("count"), 5)
    }
}
