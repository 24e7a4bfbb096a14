import Foundation

/// The first non-zero status that any worker of a parallel pass (`RowParallel`) reported.
final class FirstStatus: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var value: Int32 = 0
    func record(_ status: Int32) {
        guard status != 0 else { return }
        lock.lock(); if value == 0 { value = status }; lock.unlock()
    }
}
