import CDNNL

/// What a oneDNN primitive does besides its main operation, given when it is created
/// (`DNNLPrimitive(_:attributes:_:)`): post-ops applied to the result before it is written, output
/// scales, and the zero points of integer operands. oneDNN copies them into the primitive
/// descriptor, so a value of this type is only a description.
///
/// Runtime values (a binary post-op's second operand, runtime scales or zero points) are passed at
/// execution under the argument numbers `binaryArgument(postOp:)`, `DNNL_ARG_ATTR_OUTPUT_SCALES`
/// and `zeroPointArgument(_:)` name.
public struct DNNLAttributes {
    /// One step of the post-op chain, applied in order to the primitive's (scaled, biased) result.
    public enum PostOp {
        /// `dst = result + scale · dst`: dst already holds the addend when the primitive runs
        /// (an in-place residual add).
        case sum(scale: Float)
        /// `dst = scale · f(dst; alpha, beta)` for a oneDNN eltwise algorithm (`dnnl_eltwise_gelu_erf`, ...).
        case eltwise(dnnl_alg_kind_t, alpha: Float, beta: Float, scale: Float)
        /// `dst = dst ∘ src1` (`dnnl_binary_add`, `dnnl_binary_mul`, ...) with `src1` described by
        /// `operand` (the destination's shape, or broadcastable to it) and given at execution.
        case binary(dnnl_alg_kind_t, operand: dnnl_memory_desc_t)
    }

    /// Output scales: the integer result times these before bias and post-ops.
    public enum Scales {
        /// One scale for every output.
        case common(Float)
        /// One scale per index of the dimensions `mask` selects (bit d = dimension d), e.g. per
        /// output channel.
        case perChannel([Float], mask: Int32)
        /// Scales given at execution under `DNNL_ARG_ATTR_OUTPUT_SCALES` (a `[count]` f32 memory).
        case runtime(mask: Int32)
    }

    /// A zero point of one integer operand (`DNNL_ARG_SRC`, `DNNL_ARG_DST`, ...).
    public enum ZeroPoint {
        case common(Int32)
        /// Given at execution under `zeroPointArgument(argument)` (a `[1]` s32 memory).
        case runtime
    }

    public var postOps: [PostOp]
    public var outputScales: Scales?
    public var zeroPoints: [(argument: Int32, value: ZeroPoint)]
    /// The caller passes the primitive's scratchpad at execution (`DNNL_ARG_SCRATCHPAD`, sized by
    /// `dnnl_query_scratchpad_md`) instead of the primitive holding one for its lifetime.
    public var userScratchpad: Bool

    public init(postOps: [PostOp] = [], outputScales: Scales? = nil, zeroPoints: [(argument: Int32, value: ZeroPoint)] = [],
                userScratchpad: Bool = false) {
        self.postOps = postOps
        self.outputScales = outputScales
        self.zeroPoints = zeroPoints
        self.userScratchpad = userScratchpad
    }

    /// The execution argument of the second operand of the binary post-op at `index` in `postOps`
    /// (oneDNN's `DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1`, a C macro Swift cannot call).
    public static func binaryArgument(postOp index: Int) -> Int32 {
        DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE * Int32(index + 1) | DNNL_ARG_SRC_1
    }

    /// The execution argument of a runtime zero point of `argument`.
    public static func zeroPointArgument(_ argument: Int32) -> Int32 { DNNL_ARG_ATTR_ZERO_POINTS | argument }

    /// oneDNN's marker for "given at execution" (`DNNL_RUNTIME_F32_VAL`: a NaN with this payload).
    static let runtimeF32 = Float(bitPattern: 0x7fc0_00d0)
    /// `DNNL_RUNTIME_S32_VAL`.
    static let runtimeS32 = Int32.min

    /// Builds the oneDNN attribute object, hands it to `body` and destroys it afterwards (oneDNN
    /// keeps its own copy in every primitive descriptor made with it).
    func withHandle<R>(_ what: @autoclosure () -> String, _ body: (dnnl_primitive_attr_t) throws -> R) throws -> R {
        var attr: dnnl_primitive_attr_t?
        try DNNLEngine.check(dnnl_primitive_attr_create(&attr), "\(what()) attr_create")
        guard let attr else { throw DNNLError(operation: "\(what()) attr_create", status: dnnl_runtime_error) }
        defer { dnnl_primitive_attr_destroy(attr) }
        if !postOps.isEmpty {
            var ops: dnnl_post_ops_t?
            try DNNLEngine.check(dnnl_post_ops_create(&ops), "\(what()) post_ops_create")
            guard let ops else { throw DNNLError(operation: "\(what()) post_ops_create", status: dnnl_runtime_error) }
            defer { dnnl_post_ops_destroy(ops) }
            for op in postOps {
                switch op {
                case .sum(let scale):
                    try DNNLEngine.check(dnnl_post_ops_append_sum(ops, scale), "\(what()) sum post-op")
                case .eltwise(let alg, let alpha, let beta, let scale):
                    try DNNLEngine.check(dnnl_post_ops_append_eltwise(ops, scale, alg, alpha, beta), "\(what()) eltwise post-op")
                case .binary(let alg, var operand):
                    try DNNLEngine.check(dnnl_post_ops_append_binary(ops, alg, &operand), "\(what()) binary post-op")
                }
            }
            try DNNLEngine.check(dnnl_primitive_attr_set_post_ops(attr, ops), "\(what()) set_post_ops")
        }
        if let outputScales {
            let status: dnnl_status_t
            switch outputScales {
            case .common(let s):
                var v = s
                status = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &v)
            case .perChannel(let scales, let mask):
                status = dnnl_primitive_attr_set_output_scales(attr, Int64(scales.count), mask, scales)
            case .runtime(let mask):
                var v = Self.runtimeF32
                status = dnnl_primitive_attr_set_output_scales(attr, 1, mask, &v)
            }
            try DNNLEngine.check(status, "\(what()) set_output_scales")
        }
        for (argument, value) in zeroPoints {
            var v: Int32
            switch value {
            case .common(let z): v = z
            case .runtime: v = Self.runtimeS32
            }
            try DNNLEngine.check(dnnl_primitive_attr_set_zero_points(attr, argument, 1, 0, &v), "\(what()) set_zero_points")
        }
        if userScratchpad {
            try DNNLEngine.check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "\(what()) set_scratchpad_mode")
        }
        return try body(attr)
    }
}

