// Process-level allocator control (malloc.h and dlfcn.h are not visible from Swift).
#include <dlfcn.h>
#include <malloc.h>
#include "mixdq_kernels.h"

void mdq_tune_allocator(int mmap_threshold_bytes, int trim_threshold_bytes) {
    mallopt(M_MMAP_THRESHOLD, mmap_threshold_bytes);
    mallopt(M_TRIM_THRESHOLD, trim_threshold_bytes);
}

// gperftools exports these when the executable links tcmalloc (the mixdq tool does); looked up at
// run time so that library users on glibc malloc (the test bundles) need no link to it.
const char *mdq_allocator_version(void) {
    typedef const char *(*version_fn)(int *, int *, const char **);
    version_fn version = (version_fn)dlsym(RTLD_DEFAULT, "tc_version");
    // Loaded is not enough: malloc itself must resolve to tcmalloc's (it is an alias of tc_malloc).
    void *malloc_in_use = dlsym(RTLD_DEFAULT, "malloc");
    if (!version || !malloc_in_use || malloc_in_use != dlsym(RTLD_DEFAULT, "tc_malloc")) return NULL;
    int major = 0, minor = 0;
    const char *patch = NULL;
    return version(&major, &minor, &patch);
}

void mdq_release_free_memory(void) {
    typedef void (*release_fn)(void);
    release_fn release = (release_fn)dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory");
    if (release) release(); else malloc_trim(0);
}
