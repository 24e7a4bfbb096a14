import CDNNL
import CKernels
import Foundation

/// The s8 weight codes of a oneDNN INT8 primitive as they rest in memory between calls: s8 in the
/// primitive's layout (8 bits), or 4-/2-bit packed (`PackedWeightCodes`) and unpacked, for the
/// length of one call, into the scratch buffer all packed layers share (`Int8UnpackScratch`).
///
/// Packed weights keep oneDNN's reordered buffer itself: it is the codes permuted plus zero padding,
/// so packing it is exact and a call only unpacks (no reorder). That holds only when the layout
/// carries no compensation or scale adjustment (`extra.flags` 0, as for u8 activations); otherwise,
/// and if the reordered bytes were not all codes of the width, the codes are packed in their plain
/// order and reordered on every call.
final class Int8WeightsAtRest: @unchecked Sendable {
    /// What the primitive reads.
    let layoutMD: dnnl_memory_desc_t
    let restBits: Int
    private let storage: Storage
    private let name: String
    private let packPrimitiveLayout: Bool

    private enum Storage {
        case s8(AlignedBuffer)
        case packedLayout(PackedWeightCodes)
        case packedPlain(PackedWeightCodes, plainMD: dnnl_memory_desc_t)
    }

    /// `codes` laid out as `plainMD`, wanted as `layoutMD`; `name` appears in errors. `packPrimitiveLayout`
    /// false forces the plain-order fallback (tests, diagnosis).
    init(codes: [Int8], plainMD: dnnl_memory_desc_t, layoutMD: dnnl_memory_desc_t, restBits: Int, name: String,
         packPrimitiveLayout: Bool = true) throws {
        // Width and range first: a code that does not fit is the caller's error, whatever the layout.
        let plain = restBits == 8 ? nil : try PackedWeightCodes(codes: codes, bits: restBits, name: name)
        self.layoutMD = layoutMD
        self.restBits = restBits
        self.name = name
        self.packPrimitiveLayout = packPrimitiveLayout
        let reordered = try codes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { throw Int8KernelError(layer: name, "no weight codes") }
            return try DNNLEngine.shared.reorder(base, plainMD, to: layoutMD)
        }
        guard let plain else {
            storage = .s8(reordered)
            return
        }
        if packPrimitiveLayout, layoutMD.extra.flags == 0 {
            let laidOut = [Int8](UnsafeBufferPointer(start: reordered.pointer.assumingMemoryBound(to: Int8.self), count: reordered.byteCount))
            if let packed = try? PackedWeightCodes(codes: laidOut, bits: restBits, name: name) {
                storage = .packedLayout(packed)
                return
            }
        }
        storage = .packedPlain(plain, plainMD: plainMD)
    }

    /// Bytes the weights occupy between calls.
    var bytesAtRest: Int {
        switch storage {
        case .s8(let buffer): return buffer.byteCount
        case .packedLayout(let packed), .packedPlain(let packed, _): return packed.bytes.count
        }
    }

    /// Whether calls unpack straight into the primitive's layout (no per-call reorder).
    var packsPrimitiveLayout: Bool {
        if case .packedLayout = storage { return true }
        return false
    }

    /// The same codes laid out as `newLayout` (a primitive for another shape wants another layout).
    func relaidOut(to newLayout: dnnl_memory_desc_t, plainMD: dnnl_memory_desc_t) throws -> Int8WeightsAtRest {
        let plain = try withLayoutWeights { w in try DNNLEngine.shared.reorder(w, layoutMD, to: plainMD) }
        var plainMD = plainMD
        let codes = [Int8](UnsafeBufferPointer(start: plain.pointer.assumingMemoryBound(to: Int8.self), count: dnnl_memory_desc_get_size(&plainMD)))
        return try Int8WeightsAtRest(codes: codes, plainMD: plainMD, layoutMD: newLayout, restBits: restBits, name: name,
                                     packPrimitiveLayout: packPrimitiveLayout)
    }

    /// Runs `body` with the s8 weights in the primitive's layout (a scratch buffer, freed after, when packed).
    func withLayoutWeights<T>(_ body: (UnsafeMutableRawPointer) throws -> T) throws -> T {
        switch storage {
        case .s8(let buffer):
            return try body(buffer.pointer)
        case .packedLayout(let packed):
            return try Int8UnpackScratch.shared.use(byteCount: packed.count) { scratch in
                packed.unpackInParallel(into: scratch.assumingMemoryBound(to: Int8.self))
                return try body(scratch)
            }
        case .packedPlain(let packed, let plainMD):
            let codes = AlignedBuffer(byteCount: packed.count)
            packed.unpackInParallel(into: codes.pointer.assumingMemoryBound(to: Int8.self))
            let laidOut = try DNNLEngine.shared.reorder(codes.pointer, plainMD, to: layoutMD)
            return try body(laidOut.pointer)
        }
    }
}

/// The one s8 buffer packed layers unpack into: grown to the largest layer and kept, so a call pays
/// neither an allocation nor first-touch page faults (a fresh multi-MB buffer per call cost more than
/// the unpack itself). Calls take turns; their oneDNN primitives run one at a time anyway
/// (`DNNLEngine.execute`).
public final class Int8UnpackScratch: @unchecked Sendable {
    static let shared = Int8UnpackScratch()
    private let lock = NSLock()
    private var buffer: AlignedBuffer?

    /// Bytes the shared scratch holds now (for memory accounting: the largest packed layer's s8 size).
    public static var byteCount: Int {
        shared.lock.lock(); defer { shared.lock.unlock() }
        return shared.buffer?.byteCount ?? 0
    }

    func use<T>(byteCount: Int, _ body: (UnsafeMutableRawPointer) throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        let current: AlignedBuffer
        if let buffer, buffer.byteCount >= byteCount {
            current = buffer
        } else {
            buffer = nil  // free the smaller one first
            current = AlignedBuffer(byteCount: byteCount)
            buffer = current
        }
        return try body(current.pointer)
    }
}

extension PackedWeightCodes {
    /// `unpack(into:)` over row blocks of whole bytes (64 codes: 32 bytes at 4 bits, 16 at 2), across cores.
    func unpackInParallel(into codes: UnsafeMutablePointer<Int8>) {
        let block = 64
        let blocks = (count + block - 1) / block
        guard bits != 8, blocks > 1 else { unpack(into: codes); return }
        let (bits, count) = (self.bits, self.count)
        bytes.withUnsafeBufferPointer { b in
            guard let src = b.baseAddress else { return }
            RowParallel.run(rows: blocks, rowLength: block) { r in
                let start = r.lowerBound * block, n = min(r.upperBound * block, count) - start
                if bits == 4 { mdq_unpack_s4(src + start / 2, codes + start, n) } else { mdq_unpack_s2(src + start / 4, codes + start, n) }
            }
        }
    }
}
