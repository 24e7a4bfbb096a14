/// A binary min-heap of BPE merge candidates, each `(rank, position)` packed into one `UInt64`
/// (rank in the high half), so the lowest rank comes first and, within a rank, the leftmost position.
struct MergeQueue {
    private var items: [UInt64] = []

    static func pack(rank: Int32, position: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: position))
    }
    static func rank(_ item: UInt64) -> Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: item >> 32)) }
    static func position(_ item: UInt64) -> Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: item)) }

    var isEmpty: Bool { items.isEmpty }
    var min: UInt64? { items.first }

    mutating func push(_ item: UInt64) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popMin() -> UInt64? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count, items[left] < items[smallest] { smallest = left }
                if right < items.count, items[right] < items[smallest] { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
