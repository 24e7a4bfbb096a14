import Foundation

/// A contiguous, row-major float32 tensor that owns 64-byte aligned memory.
///
/// Activations are always float32 in memory; reduced precision (bf16) lives inside the layer
/// kernels. Image-like activations use `FeatureMap` (NHWC) on top of this type so that layout is
/// explicit and nothing transposes silently.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    /// Keeps alive whatever memory `data` points into when the tensor does not own it.
    private let owner: AnyObject?
    private let ownsMemory: Bool

    /// Allocates uninitialised storage.
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let bytes = max(self.count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        self.data = raw.bindMemory(to: Float.self, capacity: max(self.count, 1))
        self.owner = nil
        self.ownsMemory = true
    }

    /// Zero-filled storage.
    public convenience init(zeros shape: [Int]) {
        self.init(uninitializedShape: shape)
        data.initialize(repeating: 0, count: count)
    }

    public convenience init(shape: [Int], repeating value: Float) {
        self.init(uninitializedShape: shape)
        data.initialize(repeating: value, count: count)
    }

    public convenience init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "\(values.count) values do not fill shape \(shape)")
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A view on memory owned by `owner` (a memory-mapped file, another tensor).
    public init(viewing pointer: UnsafeMutablePointer<Float>, shape: [Int], owner: AnyObject) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = pointer
        self.owner = owner
        self.ownsMemory = false
    }

    deinit {
        if ownsMemory { UnsafeMutableRawPointer(data).deallocate() }
    }

    public var rank: Int { shape.count }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var scalars: [Float] { Array(buffer) }

    /// Same memory, another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(viewing: data, shape: newShape, owner: self)
    }

    public func copy() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.data.update(from: data, count: count)
        return t
    }

    public subscript(flat i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}
