import MixDQCompute

/// diffusers `Downsample2D` with a conv: 3x3, stride 2, symmetric padding.
public final class Downsample2D {
    public let conv: Conv2d
    public init(_ loader: ModuleLoader, channels: Int, padding: Int) throws {
        conv = try loader.conv("conv", in: channels, out: channels, kernel: 3, stride: 2, padding: padding)
    }
    public func callAsFunction(_ x: FeatureMap) throws -> FeatureMap { try conv(x) }
}

/// diffusers `Upsample2D`: nearest 2x (or to an explicit size) then a 3x3 conv.
public final class Upsample2D {
    public let conv: Conv2d
    public init(_ loader: ModuleLoader, channels: Int) throws {
        conv = try loader.conv("conv", in: channels, out: channels, kernel: 3, padding: 1)
    }
    public func callAsFunction(_ x: FeatureMap, size: (Int, Int)? = nil) throws -> FeatureMap {
        let (h, w) = size ?? (x.height * 2, x.width * 2)
        return try conv(Ops.upsampleNearest(x, height: h, width: w))
    }
}
