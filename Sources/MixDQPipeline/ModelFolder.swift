import Foundation
import MixDQCompute
import MixDQIO
import MixDQModels

/// A diffusers pipeline folder (`model_index.json`, `unet/`, `vae/`, `text_encoder/`, ...), or a
/// single component folder given directly.
public struct ModelFolder {
    public let root: URL
    public init(_ root: URL) { self.root = root }

    public enum FolderError: Error, CustomStringConvertible, LocalizedError {
        case missingComponent(component: String, path: String)
        public var description: String {
            switch self {
            case let .missingComponent(component, path):
                return "\(path): no '\(component)' component folder (expected \(path)/\(component)/config.json)"
            }
        }
        public var errorDescription: String? { description }
    }

    /// The folder of a component: `root/<name>` or `root` itself when it is that component.
    public func component(_ name: String) throws -> URL {
        let fm = FileManager.default
        let sub = root.appendingPathComponent(name)
        if fm.fileExists(atPath: sub.appendingPathComponent("config.json").path) { return sub }
        if root.lastPathComponent == name, fm.fileExists(atPath: root.appendingPathComponent("config.json").path) { return root }
        throw FolderError.missingComponent(component: name, path: root.path)
    }

    /// Builds the UNet in the given precision.
    public func loadUNet(precision: Precision = .fp32) throws -> UNet2DConditionModel {
        let dir = try component("unet")
        let config = try UNetConfig.load(dir.appendingPathComponent("config.json"))
        let weights = try SafetensorsWeightSource.open(folder: dir)
        let unet = try UNet2DConditionModel(config: config, weights: weights)
        if precision != .fp32 { unet.registry.usePrecision(precision) }
        return unet
    }
}
