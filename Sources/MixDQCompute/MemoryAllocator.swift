import CKernels

/// Which malloc serves this process. The `mixdq` tool links gperftools' tcmalloc: a UNet forward
/// allocates and frees several GB of activations, and glibc malloc serves blocks that large from
/// fresh mmap pages every time (with the threshold `ComputeRuntime` sets, or above its 32 MB
/// adaptive ceiling), so every layer paid page faults and kernel zeroing on its output (measured:
/// ~850k faults and ~1 s of a 5-6 s W8A8 forward). tcmalloc keeps freed spans for reuse and returns
/// them to the system gradually, or at once through `returnFreeMemory()`.
public enum MemoryAllocator {
    /// "gperftools 2.10", or "glibc malloc" in processes that do not link tcmalloc (the test bundles).
    public static var name: String {
        guard let version = mdq_allocator_version() else { return "glibc malloc" }
        return String(cString: version)
    }

    /// Hands free memory back to the system, so that a component just released (text encoders
    /// before the UNet loads, the UNet before the VAE) does not stay in the peak resident size.
    public static func returnFreeMemory() { mdq_release_free_memory() }
}
