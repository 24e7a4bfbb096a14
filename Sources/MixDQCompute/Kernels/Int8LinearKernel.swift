import CKernels

/// A W8A8 Linear: u8 activation codes (per-tensor Δx, zero point z), s8 weight codes with
/// per-output-channel Δw, exact s32 products on oneDNN, then
/// `y[m, c] = (acc[m, c] - z·Σ_k w[c, k]) · (Δx·Δw[c]) + bias[c]` (mixdq-method.md §7.2, with u8
/// codes and z in place of the original's shifted s8 codes and z - 128: the same integers). The
/// products run on oneDNN, or on CPUs without VNNI on our exact VPMADDWD kernel (`Int8ProductsChoice`).
public final class Int8LinearKernel: LinearKernel, @unchecked Sendable {
    public let name: String
    public let inFeatures: Int, outFeatures: Int
    public let inputScale: Float
    public let inputZeroPoint: Int32
    /// Largest activation code, 2^bits - 1 (255 for 8-bit activations, 15 for 4-bit).
    public let inputCodeMax: Float
    /// Δx·Δw[c], computed once in float32.
    public let outputScales: [Float]
    private let bias: Tensor?
    public let matmul: any Int8Products

    /// Bytes the weight codes occupy between calls (packed at `restBits`; scales and bias not counted).
    public var weightBytesAtRest: Int { matmul.weightBytesAtRest }

    /// `weightCodes` is `[outFeatures, inFeatures]` row-major in [-128, 127]; `name` appears in errors.
    /// `restBits` 2, 4 or 8: the codes rest packed at that width and unpack per call (they must fit it).
    public init(name: String, weightCodes: [Int8], outFeatures: Int, inFeatures: Int, weightScales: [Float],
                inputScale: Float, inputZeroPoint: Int, activationBits: Int = 8, bias: Tensor?, restBits: Int = 8, splitActivations: Bool? = nil) throws {
        outputScales = try Int8KernelError.validatedScales(
            layer: name, outChannels: outFeatures, reduction: inFeatures, codeCount: weightCodes.count,
            weightScales: weightScales, inputScale: inputScale, inputZeroPoint: inputZeroPoint,
            activationBits: activationBits, bias: bias)
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.inputScale = inputScale
        self.inputZeroPoint = Int32(inputZeroPoint)
        inputCodeMax = Float((1 << activationBits) - 1)
        self.bias = bias
        matmul = try Int8ProductsChoice.make(weightCodes: weightCodes, outFeatures: outFeatures, inFeatures: inFeatures,
                                             restBits: restBits, splitActivations: splitActivations, name: name)
    }

    public func forward(_ x: Tensor) throws -> Tensor { try forward(x, residual: nil) }

    /// `forward(x) + residual` with the add fused into the dequantization epilogue (bit-identical to
    /// adding afterwards: the same float operations in the same order).
    public func forward(_ x: Tensor, adding residual: Tensor) throws -> Tensor { try forward(x, residual: residual) }

    /// GEGLU fused into the activation quantizer: per block of rows GEGLU runs into a cache-sized
    /// scratch and is quantized from there (the same two C kernels as unfused, so the same codes),
    /// instead of writing the `[m, inFeatures]` fp32 GEGLU output to memory and reading it back.
    public func forward(gegluOf proj: Tensor, adding residual: Tensor?) throws -> Tensor {
        guard proj.rank >= 1, proj.shape.last == 2 * inFeatures else { throw LinearShapeError(expected: 2 * inFeatures, got: proj.shape) }
        let k = inFeatures
        let (delta, zp, top) = (inputScale, inputZeroPoint, inputCodeMax)
        return try forward(shape: Array(proj.shape.dropLast()) + [k], residual: residual) { q, m in
            let blockRows = max(1, (32 << 10) / k)
            RowParallel.run(rows: m, rowLength: 2 * k) { rows in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * k)
                defer { scratch.deallocate() }
                var r = rows.lowerBound
                while r < rows.upperBound {
                    let n = min(blockRows, rows.upperBound - r)
                    mdq_geglu(proj.data + r * 2 * k, scratch, n, k)
                    mdq_quantize_u8(scratch, q + r * k, n * k, delta, Float(zp), top)
                    r += n
                }
            }
        }
    }

    private func forward(_ x: Tensor, residual: Tensor?) throws -> Tensor {
        guard x.rank >= 1, x.shape.last == inFeatures else { throw LinearShapeError(expected: inFeatures, got: x.shape) }
        let (k, delta, zp, top) = (inFeatures, inputScale, inputZeroPoint, inputCodeMax)
        return try forward(shape: x.shape, residual: residual) { q, m in
            RowParallel.run(rows: m, rowLength: k) { rows in
                mdq_quantize_u8(x.data + rows.lowerBound * k, q + rows.lowerBound * k, rows.count * k, delta, Float(zp), top)
            }
        }
    }

    /// Quantizes the `[..., inFeatures]` input of shape `inputShape` through `quantize(codes, rows)`,
    /// then the s32 products go straight into the output's storage and are dequantized in place.
    private func forward(shape inputShape: [Int], residual: Tensor?,
                         quantize: (UnsafeMutablePointer<UInt8>, Int) -> Void) throws -> Tensor {
        let m = inputShape.reduce(1, *) / inFeatures
        let y = Tensor(uninitializedShape: Array(inputShape.dropLast()) + [outFeatures])
        if let residual, residual.shape != y.shape {
            throw Int8KernelError(layer: name, "residual \(residual.shape) does not match the output \(y.shape)")
        }
        guard m > 0 else { return y }
        let codes = AlignedBuffer(byteCount: m * inFeatures)
        let q = codes.pointer.assumingMemoryBound(to: UInt8.self)
        quantize(q, m)
        try matmul.accumulateDequantized(q, rows: m, into: y.data, zeroPoint: inputZeroPoint, scales: outputScales, bias: bias,
                                         residual: residual.map { UnsafePointer($0.data) })
        return y
    }

    /// The epilogue over row blocks (elementwise per row, so the split cannot change a bit); `acc`
    /// may be `y`'s own storage.
    static func dequantize(_ acc: UnsafePointer<Int32>, into y: UnsafeMutablePointer<Float>, rows: Int, columns n: Int,
                           zeroPoint: Int32, weightSums: [Int32], scales: [Float], bias: Tensor?,
                           residual: UnsafePointer<Float>? = nil) {
        weightSums.withUnsafeBufferPointer { ws in
            scales.withUnsafeBufferPointer { sc in
                RowParallel.run(rows: rows, rowLength: n) { r in
                    mdq_dequant_s32_rows(acc + r.lowerBound * n, y + r.lowerBound * n, r.count, n, zeroPoint,
                                         ws.baseAddress, sc.baseAddress, bias.map { UnsafePointer($0.data) },
                                         residual.map { $0 + r.lowerBound * n })
                }
            }
        }
    }
}
