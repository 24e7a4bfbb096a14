import CHDF5
import Foundation
import MixDQCompute

/// A failed HDF5 operation, naming the file, the object (dataset, group or attribute) and why.
public struct HDF5Error: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let file: String
    public let object: String?
    public let message: String

    public init(file: String, object: String?, message: String) {
        self.file = file
        self.object = object
        self.message = message
    }

    public var description: String {
        if let object { return "\(file): '\(object)': \(message)" }
        return "\(file): \(message)"
    }

    public var errorDescription: String? { description }
}

/// Distribution builds of HDF5 (Debian's serial package, Homebrew) are not thread-safe, so every
/// call into the library goes through this one lock.
private let hdf5Lock = NSRecursiveLock()

private func withHDF5Lock<T>(_ body: () throws -> T) rethrows -> T {
    hdf5Lock.lock()
    defer { hdf5Lock.unlock() }
    return try body()
}

/// An HDF5 file holding float32 tensors, string lists and attributes at slash-separated paths.
///
/// Used for calibration data (`xs`, `ts`, `text_embs`, `added_cond_kwargs/text_embeds`, `prompts`
/// ...), laid out so that `h5py.File(path)[key][...]` gives what the original's `torch.load` dict
/// held. Large datasets can be created at full shape and filled slice by slice (`writeSlice`), so a
/// long run can flush after each batch and resume. Files are written through `HDF5Writer`, which
/// renames a finished file into place so a reader never sees a half-written one.
public final class HDF5File {
    public let url: URL
    public let isWritable: Bool
    private var fileID: hid_t

    private init(url: URL, fileID: hid_t, isWritable: Bool) {
        self.url = url
        self.fileID = fileID
        self.isWritable = isWritable
    }

    deinit {
        if fileID >= 0 { withHDF5Lock { _ = H5Fclose(fileID) } }
    }

    // MARK: Opening and closing

    /// Creates (truncating) the file at `url`. Prefer `HDF5Writer`, which writes to a temporary
    /// name and renames on success.
    public static func create(_ url: URL) throws -> HDF5File {
        try withHDF5Lock {
            try openFile(url, writable: true) { fapl in
                H5Fcreate(url.path, mdq_H5F_ACC_TRUNC(), mdq_H5P_DEFAULT(), fapl)
            }
        }
    }

    /// Opens an existing file read-only.
    public static func open(_ url: URL) throws -> HDF5File {
        try withHDF5Lock {
            try openFile(url, writable: false) { fapl in H5Fopen(url.path, mdq_H5F_ACC_RDONLY(), fapl) }
        }
    }

    /// Opens an existing file for reading and writing (to resume an interrupted run).
    public static func openForUpdate(_ url: URL) throws -> HDF5File {
        try withHDF5Lock {
            try openFile(url, writable: true) { fapl in H5Fopen(url.path, mdq_H5F_ACC_RDWR(), fapl) }
        }
    }

    private static func openFile(_ url: URL, writable: Bool, _ body: (hid_t) -> hid_t) throws -> HDF5File {
        mdq_H5_silence_errors()
        // A clear message for the common case instead of HDF5's "unable to open file".
        if !writable && !FileManager.default.fileExists(atPath: url.path) {
            throw HDF5Error(file: url.path, object: nil, message: "no such file")
        }
        let fapl = H5Pcreate(mdq_H5P_FILE_ACCESS())
        guard fapl >= 0 else { throw lastError(file: url.path, object: nil, "cannot create a file-access property list") }
        defer { H5Pclose(fapl) }
        // STRONG: closing the file closes whatever is still open in it, so `close()` really
        // releases the file before `HDF5Writer` renames it.
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG)
        let id = body(fapl)
        guard id >= 0 else {
            let verb = FileManager.default.fileExists(atPath: url.path) && !writable
                ? "cannot open as HDF5" : (writable ? "cannot create or open for writing" : "cannot open")
            throw lastError(file: url.path, object: nil, verb)
        }
        return HDF5File(url: url, fileID: id, isWritable: writable)
    }

    /// Closes the file; later calls on this object throw. Closing twice is harmless.
    public func close() throws {
        try withHDF5Lock {
            guard fileID >= 0 else { return }
            let status = H5Fclose(fileID)
            fileID = -1
            if status < 0 { throw error("cannot close the file", nil) }
        }
    }

    /// Writes buffered data to disk, so that an interrupted run leaves a readable file.
    public func flush() throws {
        try withHDF5Lock {
            let fid = try openID()
            try check(H5Fflush(fid, H5F_SCOPE_GLOBAL), "cannot flush", nil)
        }
    }

    // MARK: Float datasets

    /// Writes `tensor` as a float32 dataset at `path` (`added_cond_kwargs/text_embeds`), creating
    /// intermediate groups. An existing dataset of the same shape is overwritten.
    public func write(_ path: String, tensor: Tensor) throws {
        try write(path, shape: tensor.shape, pointer: UnsafePointer(tensor.data))
    }

    public func write(_ path: String, shape: [Int], values: [Float]) throws {
        guard shape.reduce(1, *) == values.count else {
            throw HDF5Error(file: url.path, object: path,
                            message: "\(values.count) values do not fill shape \(shape)")
        }
        guard !values.isEmpty else { return try createFloatDataset(path, shape: shape) }
        try values.withUnsafeBufferPointer { buf in
            try write(path, shape: shape, pointer: buf.baseAddress!)
        }
    }

    private func write(_ path: String, shape: [Int], pointer: UnsafePointer<Float>) throws {
        try withHDF5Lock {
            let ds = try createOrOpenFloatDataset(path, shape: shape)
            defer { H5Dclose(ds) }
            guard shape.reduce(1, *) > 0 else { return }
            try check(H5Dwrite(ds, mdq_H5T_NATIVE_FLOAT(), mdq_H5S_ALL(), mdq_H5S_ALL(), mdq_H5P_DEFAULT(), pointer),
                      "cannot write data", path)
        }
    }

    /// Creates a float32 dataset of the full `shape` (zero-filled) to be filled with
    /// `writeSlice`. If it already exists with this shape (a resumed run) it is left as is.
    public func createFloatDataset(_ path: String, shape: [Int]) throws {
        try withHDF5Lock {
            let ds = try createOrOpenFloatDataset(path, shape: shape)
            H5Dclose(ds)
        }
    }

    /// Writes `data` into the dataset at `path` starting at index `start`.
    ///
    /// `data` may have lower rank than the dataset: its shape is padded with leading 1s (writing
    /// a `[n, 4, 64, 64]` batch at `start: [t, n0]` of a `[T, N, 4, 64, 64]` dataset). Missing
    /// trailing entries of `start` are 0.
    public func writeSlice(_ path: String, start: [Int], data: Tensor) throws {
        try withHDF5Lock {
            let ds = try openDataset(path)
            defer { H5Dclose(ds) }
            let fileSpace = try check(H5Dget_space(ds), "cannot get the dataspace", path)
            defer { H5Sclose(fileSpace) }
            let dims = try extent(fileSpace, path)
            let (offset, count) = try sliceGeometry(path, dims: dims, start: start, count: data.shape, padCount: true)
            guard count.reduce(1, *) > 0 else { return }
            try check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, offset.map(hsize_t.init), nil,
                                          count.map(hsize_t.init), nil), "cannot select slice \(start)", path)
            let memSpace = try check(H5Screate_simple(Int32(count.count), count.map(hsize_t.init), nil),
                                     "cannot create a memory dataspace", path)
            defer { H5Sclose(memSpace) }
            try check(H5Dwrite(ds, mdq_H5T_NATIVE_FLOAT(), memSpace, fileSpace, mdq_H5P_DEFAULT(), data.data),
                      "cannot write slice at \(start) of shape \(data.shape)", path)
        }
    }

    /// Reads a numeric dataset as float32 (HDF5 converts other float and integer types).
    public func readFloats(_ path: String) throws -> (shape: [Int], values: [Float]) {
        let t = try readTensor(path)
        return (t.shape, t.scalars)
    }

    public func readTensor(_ path: String) throws -> Tensor {
        try withHDF5Lock {
            let ds = try openDataset(path)
            defer { H5Dclose(ds) }
            try requireNumeric(ds, path)
            let space = try check(H5Dget_space(ds), "cannot get the dataspace", path)
            defer { H5Sclose(space) }
            let shape = try extent(space, path)
            try requireFits(shape, path)
            try requireIntactCompactData(ds, elements: shape.reduce(1, *), path)
            let t = Tensor(uninitializedShape: shape)
            if t.count > 0 {
                try check(H5Dread(ds, mdq_H5T_NATIVE_FLOAT(), mdq_H5S_ALL(), mdq_H5S_ALL(), mdq_H5P_DEFAULT(), t.data),
                          "cannot read data", path)
            }
            return t
        }
    }

    /// Reads the block of shape `count` at `start` (both of the dataset's rank).
    public func readSlice(_ path: String, start: [Int], count: [Int]) throws -> Tensor {
        try withHDF5Lock {
            let ds = try openDataset(path)
            defer { H5Dclose(ds) }
            try requireNumeric(ds, path)
            let fileSpace = try check(H5Dget_space(ds), "cannot get the dataspace", path)
            defer { H5Sclose(fileSpace) }
            let dims = try extent(fileSpace, path)
            let (offset, count) = try sliceGeometry(path, dims: dims, start: start, count: count, padCount: false)
            try requireFits(count, path)
            try requireIntactCompactData(ds, elements: dims.reduce(1, *), path)
            let t = Tensor(uninitializedShape: count)
            guard t.count > 0 else { return t }
            try check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, offset.map(hsize_t.init), nil,
                                          count.map(hsize_t.init), nil), "cannot select slice \(start)", path)
            let memSpace = try check(H5Screate_simple(Int32(count.count), count.map(hsize_t.init), nil),
                                     "cannot create a memory dataspace", path)
            defer { H5Sclose(memSpace) }
            try check(H5Dread(ds, mdq_H5T_NATIVE_FLOAT(), memSpace, fileSpace, mdq_H5P_DEFAULT(), t.data),
                      "cannot read slice at \(start) of shape \(count)", path)
            return t
        }
    }

    /// The shape of the dataset at `path`.
    public func shape(of path: String) throws -> [Int] {
        try withHDF5Lock {
            let ds = try openDataset(path)
            defer { H5Dclose(ds) }
            let space = try check(H5Dget_space(ds), "cannot get the dataspace", path)
            defer { H5Sclose(space) }
            return try extent(space, path)
        }
    }

    // MARK: String datasets

    /// Writes a 1-D dataset of variable-length UTF-8 strings (h5py reads them as `str`).
    public func writeStrings(_ path: String, _ strings: [String]) throws {
        try withHDF5Lock {
            let type = try variableStringType(cset: mdq_H5T_CSET_UTF8(), path)
            defer { H5Tclose(type) }
            let space = try check(H5Screate_simple(1, [hsize_t(strings.count)], nil), "cannot create a dataspace", path)
            defer { H5Sclose(space) }
            if exists(path) {
                throw HDF5Error(file: url.path, object: path, message: "already exists")
            }
            let ds = try check(createDataset(path, type: type, space: space), "cannot create dataset", path)
            defer { H5Dclose(ds) }
            guard !strings.isEmpty else { return }
            let cStrings: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
            defer { cStrings.forEach { free($0) } }
            try cStrings.withUnsafeBufferPointer { buf in
                try check(H5Dwrite(ds, type, mdq_H5S_ALL(), mdq_H5S_ALL(), mdq_H5P_DEFAULT(), buf.baseAddress),
                          "cannot write strings", path)
            }
        }
    }

    /// Reads a dataset of strings (variable-length or fixed-length), in storage order.
    public func readStrings(_ path: String) throws -> [String] {
        try withHDF5Lock {
            let ds = try openDataset(path)
            defer { H5Dclose(ds) }
            let fileType = try check(H5Dget_type(ds), "cannot get the datatype", path)
            defer { H5Tclose(fileType) }
            guard H5Tget_class(fileType) == H5T_STRING else {
                throw HDF5Error(file: url.path, object: path, message: "holds \(className(fileType)), not strings")
            }
            let space = try check(H5Dget_space(ds), "cannot get the dataspace", path)
            defer { H5Sclose(space) }
            let n = try extent(space, path).reduce(1, *)
            guard n > 0 else { return [] }
            return try readStringData(type: fileType, space: space, count: n, object: path) { memType, buf in
                H5Dread(ds, memType, mdq_H5S_ALL(), mdq_H5S_ALL(), mdq_H5P_DEFAULT(), buf)
            }
        }
    }

    // MARK: Attributes

    /// Sets a variable-length UTF-8 string attribute on the object at `object` ("/" is the file).
    public func setAttribute(_ name: String, _ value: String, on object: String = "/") throws {
        try withHDF5Lock {
            let type = try variableStringType(cset: mdq_H5T_CSET_UTF8(), name)
            defer { H5Tclose(type) }
            try writeAttribute(name, on: object, type: type) { attr in
                let cString = strdup(value)
                defer { free(cString) }
                var pointer: UnsafeMutablePointer<CChar>? = cString
                return H5Awrite(attr, type, &pointer)
            }
        }
    }

    /// Sets a 64-bit integer attribute (for example a count of completed batches).
    public func setAttribute(_ name: String, _ value: Int, on object: String = "/") throws {
        try withHDF5Lock {
            try writeAttribute(name, on: object, type: mdq_H5T_STD_I64LE()) { attr in
                var v = Int64(value)
                return H5Awrite(attr, mdq_H5T_NATIVE_INT64(), &v)
            }
        }
    }

    /// The string attribute `name` of `object`, or nil when there is none.
    public func attribute(_ name: String, on object: String = "/") throws -> String? {
        try withHDF5Lock {
            guard let attr = try openAttribute(name, on: object) else { return nil }
            defer { H5Aclose(attr) }
            let label = "\(object)@\(name)"
            let type = try check(H5Aget_type(attr), "cannot get the attribute type", label)
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == H5T_STRING else {
                throw HDF5Error(file: url.path, object: label, message: "holds \(className(type)), not a string")
            }
            let space = try check(H5Aget_space(attr), "cannot get the attribute dataspace", label)
            defer { H5Sclose(space) }
            let n = Int(H5Sget_simple_extent_npoints(space))
            guard n >= 1 else { return "" }
            return try readStringData(type: type, space: space, count: n, object: label) { memType, buf in
                H5Aread(attr, memType, buf)
            }.first
        }
    }

    /// The integer attribute `name` of `object`, or nil when there is none.
    public func intAttribute(_ name: String, on object: String = "/") throws -> Int? {
        try withHDF5Lock {
            guard let attr = try openAttribute(name, on: object) else { return nil }
            defer { H5Aclose(attr) }
            let label = "\(object)@\(name)"
            let type = try check(H5Aget_type(attr), "cannot get the attribute type", label)
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == H5T_INTEGER else {
                throw HDF5Error(file: url.path, object: label, message: "holds \(className(type)), not an integer")
            }
            var v: Int64 = 0
            try check(H5Aread(attr, mdq_H5T_NATIVE_INT64(), &v), "cannot read the attribute", label)
            return Int(v)
        }
    }

    // MARK: Listing

    /// True when a link (dataset or group) exists at `path`.
    public func exists(_ path: String) -> Bool {
        withHDF5Lock {
            guard fileID >= 0 else { return false }
            // H5Lexists fails on a missing intermediate group, so test each prefix in turn.
            var prefix = ""
            for part in path.split(separator: "/") {
                prefix += (prefix.isEmpty ? "" : "/") + part
                if H5Lexists(fileID, prefix, mdq_H5P_DEFAULT()) <= 0 { return false }
            }
            return !prefix.isEmpty
        }
    }

    /// The full paths of every dataset in the file (no leading slash), sorted.
    public func datasetNames() throws -> [String] {
        try withHDF5Lock {
            var names: [String] = []
            var visited = Set<[UInt8]>()
            let root = try check(H5Gopen2(try openID(), "/", mdq_H5P_DEFAULT()), "cannot open the root group", nil)
            defer { H5Gclose(root) }
            try collectDatasets(group: root, prefix: "", into: &names, visited: &visited)
            return names.sorted()
        }
    }

    /// Lists datasets below `group`. Each group is entered once, as h5py's `visit` does: hard
    /// links may form a cycle (`g/loop -> g`), which would otherwise recurse without end.
    private func collectDatasets(group: hid_t, prefix: String, into names: inout [String],
                                 visited: inout Set<[UInt8]>) throws {
        var identity = [UInt8](repeating: 0, count: 16)
        try check(mdq_H5_object_identity(group, &identity), "cannot identify group", prefix.isEmpty ? "/" : prefix)
        guard visited.insert(identity).inserted else { return }
        var info = H5G_info_t()
        try check(H5Gget_info(group, &info), "cannot list group", prefix.isEmpty ? "/" : prefix)
        for i in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, mdq_H5P_DEFAULT())
            guard length >= 0 else { throw error("cannot read link name", prefix) }
            var buf = [CChar](repeating: 0, count: Int(length) + 1)
            _ = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, mdq_H5P_DEFAULT())
            let name = String(cString: buf)
            let full = prefix.isEmpty ? name : "\(prefix)/\(name)"
            let obj = H5Oopen(group, name, mdq_H5P_DEFAULT())
            guard obj >= 0 else { continue }  // dangling soft or external link
            defer { H5Oclose(obj) }
            switch H5Iget_type(obj) {
            case H5I_DATASET: names.append(full)
            case H5I_GROUP: try collectDatasets(group: obj, prefix: full, into: &names, visited: &visited)
            default: break
            }
        }
    }

    // MARK: Internals

    private func openID() throws -> hid_t {
        guard fileID >= 0 else { throw HDF5Error(file: url.path, object: nil, message: "the file is closed") }
        return fileID
    }

    private func openDataset(_ path: String) throws -> hid_t {
        let fid = try openID()
        guard exists(path) else { throw HDF5Error(file: url.path, object: path, message: "no such dataset") }
        return try check(H5Dopen2(fid, path, mdq_H5P_DEFAULT()), "cannot open dataset", path)
    }

    private func createDataset(_ path: String, type: hid_t, space: hid_t) throws -> hid_t {
        let fid = try openID()
        guard isWritable else { throw HDF5Error(file: url.path, object: path, message: "the file is open read-only") }
        let lcpl = try check(H5Pcreate(mdq_H5P_LINK_CREATE()), "cannot create a link property list", path)
        defer { H5Pclose(lcpl) }
        try check(H5Pset_create_intermediate_group(lcpl, 1), "cannot set intermediate-group creation", path)
        return H5Dcreate2(fid, path, type, space, lcpl, mdq_H5P_DEFAULT(), mdq_H5P_DEFAULT())
    }

    private func createOrOpenFloatDataset(_ path: String, shape: [Int]) throws -> hid_t {
        if exists(path) {
            let ds = try openDataset(path)
            do {
                try requireNumeric(ds, path)
                let space = try check(H5Dget_space(ds), "cannot get the dataspace", path)
                defer { H5Sclose(space) }
                let found = try extent(space, path)
                guard found == shape else {
                    throw HDF5Error(file: url.path, object: path, message: "exists with shape \(found), not \(shape)")
                }
            } catch {
                H5Dclose(ds)
                throw error
            }
            return ds
        }
        let space = try makeSpace(shape, path)
        defer { H5Sclose(space) }
        return try check(createDataset(path, type: mdq_H5T_IEEE_F32LE(), space: space), "cannot create dataset", path)
    }

    private func makeSpace(_ shape: [Int], _ object: String) throws -> hid_t {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw HDF5Error(file: url.path, object: object, message: "negative dimension in \(shape)")
        }
        if shape.isEmpty { return try check(H5Screate(H5S_SCALAR), "cannot create a dataspace", object) }
        return try check(H5Screate_simple(Int32(shape.count), shape.map(hsize_t.init), nil),
                         "cannot create a dataspace", object)
    }

    /// The dataspace's shape. The file stores dimensions as unsigned 64-bit numbers: a shape whose
    /// nonzero dimensions multiply past Int.max / 8 is an error here, so no product of its
    /// dimensions (in elements or bytes) can trap later.
    private func extent(_ space: hid_t, _ object: String) throws -> [Int] {
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw error("cannot get the rank", object) }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0 { try check(H5Sget_simple_extent_dims(space, &dims, nil), "cannot get the shape", object) }
        var bytes = 8
        for d in dims where d > 0 {
            guard let n = Int(exactly: d), case let (product, false) = bytes.multipliedReportingOverflow(by: n) else {
                throw HDF5Error(file: url.path, object: object, message: "shape \(dims) has too many elements")
            }
            bytes = product
        }
        return dims.map { Int($0) }
    }

    /// Refuses to allocate a float32 tensor of `shape` larger than this machine's memory: a small
    /// file can declare a huge dataset (unwritten data reads as the fill value).
    private func requireFits(_ shape: [Int], _ object: String) throws {
        try requireFits(elements: shape.reduce(1, *), bytesEach: 4, object)  // extent() checked the product
    }

    private func requireFits(elements: Int, bytesEach: Int, _ object: String) throws {
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: bytesEach)
        let memory = ProcessInfo.processInfo.physicalMemory
        guard !overflow, UInt64(bytes) <= memory else {
            throw HDF5Error(file: url.path, object: object,
                            message: "\(elements) elements of \(bytesEach) bytes need more than this machine's memory (\(memory) bytes)")
        }
    }

    private func sliceGeometry(_ path: String, dims: [Int], start: [Int], count: [Int],
                               padCount: Bool) throws -> ([Int], [Int]) {
        guard start.count <= dims.count, count.count <= dims.count, padCount || count.count == dims.count else {
            throw HDF5Error(file: url.path, object: path,
                            message: "slice at \(start) of shape \(count) does not match the dataset's rank \(dims.count)")
        }
        let offset = start + Array(repeating: 0, count: dims.count - start.count)
        let fullCount = Array(repeating: 1, count: dims.count - count.count) + count
        for i in 0..<dims.count where offset[i] < 0 || fullCount[i] < 0 || fullCount[i] > dims[i] - offset[i] {
            throw HDF5Error(file: url.path, object: path,
                            message: "slice at \(offset) of shape \(fullCount) lies outside the dataset's shape \(dims)")
        }
        return (offset, fullCount)
    }

    private func requireNumeric(_ ds: hid_t, _ path: String) throws {
        let type = try check(H5Dget_type(ds), "cannot get the datatype", path)
        defer { H5Tclose(type) }
        let cls = H5Tget_class(type)
        guard cls == H5T_FLOAT || cls == H5T_INTEGER else {
            throw HDF5Error(file: url.path, object: path, message: "holds \(className(type)), not numbers")
        }
        // The element size is a number from the file; HDF5 sizes its conversion buffer by it
        // (a corrupt 4 GB "float" would be allocated before anything is read).
        let size = H5Tget_size(type)
        guard (1...16).contains(size) else {
            throw HDF5Error(file: url.path, object: path, message: "holds \(className(type)) of \(size) bytes each (at most 16 are supported)")
        }
        // So are the bit positions; libhdf5 1.10 converts a type whose bits lie outside its
        // bytes by reading past them (newer releases refuse such a type on open).
        let precision = Int(H5Tget_precision(type)), offset = Int(H5Tget_offset(type))
        guard precision > 0, offset >= 0, precision + offset <= size * 8 else {
            throw HDF5Error(file: url.path, object: path,
                            message: "holds \(className(type)) of \(precision) bits at bit \(offset), which do not fit in \(size) bytes")
        }
    }

    /// A compact dataset keeps its bytes in its header; libhdf5 1.10 trusts the shape over the
    /// stored byte count and copies past the end (newer releases refuse such a file on open).
    private func requireIntactCompactData(_ ds: hid_t, elements: Int, _ path: String) throws {
        let dcpl = try check(H5Dget_create_plist(ds), "cannot get the creation properties", path)
        defer { H5Pclose(dcpl) }
        guard H5Pget_layout(dcpl) == H5D_COMPACT else { return }
        let type = try check(H5Dget_type(ds), "cannot get the datatype", path)
        defer { H5Tclose(type) }
        let stored = H5Dget_storage_size(ds)
        let (needed, overflow) = elements.multipliedReportingOverflow(by: H5Tget_size(type))
        guard !overflow, stored == UInt64(needed) else {
            throw HDF5Error(file: url.path, object: path,
                            message: "compact storage holds \(stored) bytes, the shape needs \(overflow ? "more" : "\(needed)")")
        }
    }

    private func className(_ type: hid_t) -> String {
        switch H5Tget_class(type) {
        case H5T_INTEGER: return "integers"
        case H5T_FLOAT: return "floats"
        case H5T_STRING: return "strings"
        case H5T_COMPOUND: return "compound records"
        case H5T_ENUM: return "enum values"
        case H5T_VLEN: return "variable-length sequences"
        case H5T_ARRAY: return "arrays"
        default: return "non-numeric data"
        }
    }

    private func variableStringType(cset: H5T_cset_t, _ object: String) throws -> hid_t {
        let type = try check(H5Tcopy(mdq_H5T_C_S1()), "cannot create a string type", object)
        guard H5Tset_size(type, mdq_H5T_VARIABLE()) >= 0, H5Tset_cset(type, cset) >= 0,
              H5Tset_strpad(type, mdq_H5T_STR_NULLTERM()) >= 0 else {
            H5Tclose(type)
            throw error("cannot configure a string type", object)
        }
        return type
    }

    /// Reads `count` strings from a dataset or attribute of string type `type` through `read`.
    private func readStringData(type: hid_t, space: hid_t, count: Int, object: String,
                                read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> [String] {
        if H5Tis_variable_str(type) > 0 {
            try requireFits(elements: count, bytesEach: MemoryLayout<UnsafeMutablePointer<CChar>>.stride, object)
            let memType = try variableStringType(cset: H5Tget_cset(type), object)
            defer { H5Tclose(memType) }
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            return try pointers.withUnsafeMutableBufferPointer { buf in
                try check(read(memType, UnsafeMutableRawPointer(buf.baseAddress!)), "cannot read strings", object)
                defer { _ = mdq_H5_reclaim(memType, space, buf.baseAddress) }
                return buf.map { $0.map { String(cString: $0) } ?? "" }
            }
        }
        // Fixed-length strings (as numpy "S" arrays are stored): split, stop at the first NUL.
        let size = H5Tget_size(type)
        guard size > 0 else { throw error("string type has size 0", object) }
        try requireFits(elements: count, bytesEach: size, object)
        let memType = try check(H5Tcopy(type), "cannot copy the string type", object)
        defer { H5Tclose(memType) }
        var bytes = [UInt8](repeating: 0, count: count * size)
        try bytes.withUnsafeMutableBytes { buf in
            try check(read(memType, buf.baseAddress!), "cannot read strings", object)
        }
        return (0..<count).map { i in
            let slice = bytes[(i * size)..<((i + 1) * size)]
            let end = slice.firstIndex(of: 0) ?? slice.endIndex
            var s = String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
            while s.last == " " { s.removeLast() }  // space-padded strings
            return s
        }
    }

    private func writeAttribute(_ name: String, on object: String, type: hid_t, write: (hid_t) -> herr_t) throws {
        let fid = try openID()
        let label = "\(object)@\(name)"
        guard isWritable else { throw HDF5Error(file: url.path, object: label, message: "the file is open read-only") }
        let obj = try check(H5Oopen(fid, object, mdq_H5P_DEFAULT()), "no such object", label)
        defer { H5Oclose(obj) }
        if H5Aexists(obj, name) > 0 {
            try check(H5Adelete(obj, name), "cannot replace the attribute", label)
        }
        let space = try check(H5Screate(H5S_SCALAR), "cannot create a dataspace", label)
        defer { H5Sclose(space) }
        let attr = try check(H5Acreate2(obj, name, type, space, mdq_H5P_DEFAULT(), mdq_H5P_DEFAULT()),
                             "cannot create the attribute", label)
        defer { H5Aclose(attr) }
        try check(write(attr), "cannot write the attribute", label)
    }

    private func openAttribute(_ name: String, on object: String) throws -> hid_t? {
        let fid = try openID()
        let label = "\(object)@\(name)"
        guard object == "/" || exists(object) else { throw HDF5Error(file: url.path, object: object, message: "no such object") }
        let obj = try check(H5Oopen(fid, object, mdq_H5P_DEFAULT()), "no such object", label)
        defer { H5Oclose(obj) }
        guard H5Aexists(obj, name) > 0 else { return nil }
        return try check(H5Aopen(obj, name, mdq_H5P_DEFAULT()), "cannot open the attribute", label)
    }

    @discardableResult
    private func check(_ id: hid_t, _ what: String, _ object: String?) throws -> hid_t {
        if id < 0 { throw error(what, object) }
        return id
    }

    private func check(_ status: herr_t, _ what: String, _ object: String?) throws {
        if status < 0 { throw error(what, object) }
    }

    private func error(_ what: String, _ object: String?) -> HDF5Error {
        HDF5File.lastError(file: url.path, object: object, what)
    }

    /// An error carrying HDF5's own explanation from its (silenced) error stack.
    fileprivate static func lastError(file: String, object: String?, _ what: String) -> HDF5Error {
        var buf = [CChar](repeating: 0, count: 600)
        mdq_H5_last_error(&buf, buf.count)
        let detail = String(cString: buf)
        return HDF5Error(file: file, object: object, message: detail.isEmpty ? what : "\(what) (\(detail))")
    }
}

/// Writes an HDF5 file at a temporary name next to its target and renames it into place in
/// `finish()`, so that a reader never finds a half-written file at the target path.
///
/// The temporary name is fixed (`<target>.partial`) so that a run killed half-way can reopen
/// it with `resume: true` and continue filling slices; the caller records its own progress
/// (for example an integer attribute counting finished batches) and flushes after each step.
/// Two writers for the same target at once are not supported.
public final class HDF5Writer {
    public let target: URL
    public let partialURL: URL
    public let file: HDF5File
    /// True when an existing partial file was reopened.
    public let resumed: Bool

    public init(target: URL, resume: Bool = false) throws {
        self.target = target
        let folder = target.deletingLastPathComponent()
        self.partialURL = folder.appendingPathComponent(target.lastPathComponent + ".partial")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw HDF5Error(file: target.path, object: nil,
                            message: "cannot create the folder \(folder.path) (\(FileErrorText.reason(error)))")
        }
        if resume && FileManager.default.fileExists(atPath: partialURL.path) {
            file = try HDF5File.openForUpdate(partialURL)
            resumed = true
        } else {
            file = try HDF5File.create(partialURL)
            resumed = false
        }
    }

    /// Closes the file and atomically renames it to `target` (replacing an older file).
    public func finish() throws {
        try file.close()
        if rename(partialURL.path, target.path) != 0 {
            let reason = String(cString: strerror(errno))
            throw HDF5Error(file: target.path, object: nil,
                            message: "cannot move the finished file \(partialURL.path) into place (\(reason))")
        }
    }

    /// Closes and deletes the partial file (after an error that makes it worthless).
    public func discard() {
        try? file.close()
        try? FileManager.default.removeItem(at: partialURL)
    }
}
