import Foundation

/// `search merge`: joins the shard files of one run into the file an unsharded run writes (byte
/// for byte), after proving them one run, every shard present and every layer scored, and a layer
/// given twice (the same shard twice) scored the same both times.
public enum SensitivityMerge {
    public static func merge(_ urls: [URL]) throws -> SensitivityFile {
        guard !urls.isEmpty else { throw SensitivityError("search merge: give the shard files to join") }
        let files = try urls.map { try SensitivityFile.load($0) }
        let first = files[0], firstName = urls[0].path
        var byShard: [Int: String] = [:]
        var scores: [String: [Double]] = [:]
        var scoredBy: [String: String] = [:]
        for (url, f) in zip(urls, files) {
            if let (key, a, b) = difference(first.identity, f.identity) {
                throw SensitivityError("\(url.path): not a shard of the same run as \(firstName) (\(key): '\(b)' here, '\(a)' there)")
            }
            guard f.runLayers == first.runLayers else {
                throw SensitivityError("\(url.path): lists other run layers than \(firstName) (a shard of another run)")
            }
            guard f.shard.count == first.shard.count else {
                throw SensitivityError("\(url.path): is shard \(f.shard) but \(firstName) is shard \(first.shard) (different shard counts)")
            }
            // The same shard twice (a rerun, a copy) is fine when its scores agree; the value check
            // below names the first layer where they do not.
            byShard[f.shard.index] = byShard[f.shard.index] ?? url.path
            let owned = Set(f.ownedLayers)
            if let layer = f.ownedLayers.first(where: { f.scores[$0] == nil }) {
                throw SensitivityError("\(url.path): shard \(f.shard) has no scores for its layer '\(layer)' (an unfinished shard? rerun it)")
            }
            for (layer, values) in f.scores.sorted(by: { $0.key < $1.key }) {
                guard owned.contains(layer) else {
                    throw SensitivityError("\(url.path): layer '\(layer)' belongs to another shard than \(f.shard)")
                }
                if let seen = scores[layer], seen != values {
                    throw SensitivityError("layer '\(layer)' measured twice with different values: \(seen) in \(scoredBy[layer] ?? "?"), "
                                           + "\(values) in \(url.path) (overlapping shards \(f.shard) of different runs?)")
                }
                scores[layer] = values
                scoredBy[layer] = url.path
            }
        }
        let missingShards = (0..<first.shard.count).filter { byShard[$0] == nil }
        guard missingShards.isEmpty else {
            throw SensitivityError("missing shard(s) \(missingShards.map { "\($0)/\(first.shard.count)" }.joined(separator: ", ")) of the run in \(firstName)")
        }
        if let layer = first.runLayers.first(where: { scores[$0] == nil }) {
            throw SensitivityError("layer '\(layer)' has no score in any shard")
        }
        return SensitivityFile(identity: first.identity, shard: .whole, runLayers: first.runLayers, scores: scores)
    }

    static func difference(_ a: [(key: String, value: String)], _ b: [(key: String, value: String)]) -> (String, String, String)? {
        for i in 0..<max(a.count, b.count) {
            let none: (key: String, value: String) = ("(none)", "")
            let x = i < a.count ? a[i] : none, y = i < b.count ? b[i] : none
            if x.key != y.key || x.value != y.value { return (x.key == y.key ? x.key : "\(x.key) / \(y.key)", x.value, y.value) }
        }
        return nil
    }
}
