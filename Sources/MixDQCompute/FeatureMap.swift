/// An image-like activation in NHWC layout (channels last).
///
/// The UNet and VAE keep every feature map NHWC so that a transformer's token sequence
/// `[B, H*W, C]` is the same memory (token = y*W + x, as diffusers' reshape gives), and
/// oneDNN convolutions run on channels-last data. PyTorch's NCHW appears only at the model
/// boundary (`fromNCHW` / `toNCHW`).
public struct FeatureMap {
    public let tensor: Tensor
    public var batch: Int { tensor.shape[0] }
    public var height: Int { tensor.shape[1] }
    public var width: Int { tensor.shape[2] }
    public var channels: Int { tensor.shape[3] }
    public var pixels: Int { height * width }

    public init(_ tensor: Tensor) {
        precondition(tensor.rank == 4, "FeatureMap needs [N,H,W,C], got \(tensor.shape)")
        self.tensor = tensor
    }

    public init(batch: Int, height: Int, width: Int, channels: Int) {
        self.tensor = Tensor(uninitializedShape: [batch, height, width, channels])
    }

    /// The same memory seen as a token sequence `[B, H*W, C]`.
    public var tokens: Tensor { tensor.reshaped([batch, pixels, channels]) }

    /// Wraps a `[B, H*W, C]` token tensor as a feature map of the given spatial size.
    public init(tokens: Tensor, height: Int, width: Int) {
        precondition(tokens.rank == 3 && tokens.shape[1] == height * width)
        self.tensor = tokens.reshaped([tokens.shape[0], height, width, tokens.shape[2]])
    }

    /// Converts a PyTorch-layout `[N, C, H, W]` tensor.
    public static func fromNCHW(_ t: Tensor) -> FeatureMap {
        precondition(t.rank == 4, "expected [N,C,H,W], got \(t.shape)")
        let (n, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        let out = FeatureMap(batch: n, height: h, width: w, channels: c)
        let src = t.data, dst = out.tensor.data
        for b in 0..<n {
            for ch in 0..<c {
                let s = src + (b * c + ch) * h * w
                let d = dst + b * h * w * c + ch
                for p in 0..<(h * w) { d[p * c] = s[p] }
            }
        }
        return out
    }

    /// Converts back to PyTorch's `[N, C, H, W]`.
    public func toNCHW() -> Tensor {
        let (n, c, h, w) = (batch, channels, height, width)
        let out = Tensor(uninitializedShape: [n, c, h, w])
        let src = tensor.data, dst = out.data
        for b in 0..<n {
            for ch in 0..<c {
                let s = src + b * h * w * c + ch
                let d = dst + (b * c + ch) * h * w
                for p in 0..<(h * w) { d[p] = s[p * c] }
            }
        }
        return out
    }
}
