import Foundation
import MixDQIO
import Yams

/// The flat YAML files of the search: `model.<layer path>: value` in model order (ratio files:
/// one number; score files: one number per bit width). The `model.` prefix is optional on input.
enum LayerValueFile {
    /// The mapping's (layer path, value node) pairs in file order; duplicate layers are refused.
    static func entries(_ url: URL, what: String) throws -> [(path: String, node: Node, line: Int)] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw SearchInputError("\(url.path): cannot read \(what) (\(FileErrorText.reason(error)))")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw SearchInputError("\(url.path): not valid YAML (\(error))")
        }
        guard let mapping = root?.mapping else {
            throw SearchInputError("\(url.path): expected a \(what): a mapping 'model.<layer path>: ...'")
        }
        var seen = Set<String>()
        var out: [(String, Node, Int)] = []
        for (k, v) in mapping {
            let line = k.mark?.line ?? 0
            guard let key = k.scalar?.string else { throw SearchInputError("\(url.path), line \(line): key is not a layer path") }
            let path = BitConfig.strip(key)
            guard seen.insert(path).inserted else { throw SearchInputError("\(url.path), line \(line): layer '\(path)' given twice") }
            out.append((path, v, line))
        }
        return out
    }

    /// A finite number (integers and floats; `.inf`/`.nan` refused).
    static func number(_ node: Node, file: URL, path: String, line: Int) throws -> Double {
        guard let s = node.scalar, s.style == .plain || s.style == .any,
              let v = Double(s.string.replacingOccurrences(of: "_", with: "")), v.isFinite else {
            throw SearchInputError("\(file.path), line \(line): '\(path)': expected a finite number, found '\(node.scalar?.string ?? "a collection")'")
        }
        return v
    }
}
