// Process-level allocator tuning (malloc.h is not visible from Swift).
#include <malloc.h>
#include "mixdq_kernels.h"

void mdq_tune_allocator(int mmap_threshold_bytes, int trim_threshold_bytes) {
    mallopt(M_MMAP_THRESHOLD, mmap_threshold_bytes);
    mallopt(M_TRIM_THRESHOLD, trim_threshold_bytes);
}
