import MixDQCompute

/// One quantization site as every backend sees it: the layer's diffusers path, its role, its
/// geometry and where its input splits, known without its weight (a deployable checkpoint has none).
///
/// The split is MixDQ's: an up-block `conv_shortcut` reads `concat(h, skip)`, and the two parts get
/// separate activation quantizers and separate weight parameters over the matching weight columns.
public struct QuantSite: Sendable, Equatable {
    public let path: String
    public let role: LayerRole
    public let geometry: LayerGeometry
    /// Input channel ranges with their own activation quantizer (two for split shortcuts).
    public let activationParts: [Range<Int>]
    /// Column ranges of one weight row (OIHW, in·k·k long) quantized separately, matching `activationParts`.
    public let weightParts: [Range<Int>]

    public init(path: String, role: LayerRole, geometry: LayerGeometry) {
        self.path = path
        self.role = role
        self.geometry = geometry
        let inChannels = geometry.inChannels, taps = geometry.taps
        if case .concatShortcut(let split) = role, split > 0, split < inChannels {
            activationParts = [0..<split, split..<inChannels]
            weightParts = [0..<(split * taps), (split * taps)..<(inChannels * taps)]
        } else {
            activationParts = [0..<inChannels]
            weightParts = [0..<(inChannels * taps)]
        }
    }

    public init(_ layer: WeightLayer) { self.init(path: layer.path, role: layer.role, geometry: layer.geometry) }

    public var isSplit: Bool { activationParts.count == 2 }
    public var rowLength: Int { geometry.rowLength }
    public var outChannels: Int { geometry.outChannels }
}
