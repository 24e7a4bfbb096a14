// Parallel passes of our own kernels (GEGLU, norms, softmax, attention packing) on the OpenMP
// thread team oneDNN already runs, so the process has one pool of threads: a oneDNN thread still
// spinning after its primitive picks up the next pass instead of competing with a second pool for
// the cores. The team is libgomp's (libdnnl links it); its entry points are looked up at run time
// because SwiftPM's clang compiles `#pragma omp` to LLVM libomp's ABI, and linking libomp beside
// libgomp would make two pools again. GOMP_parallel is libgomp's documented ABI for a parallel
// region (the call GCC emits for `#pragma omp parallel`).
#include <dlfcn.h>
#include <pthread.h>
#include "mixdq_kernels.h"

typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
typedef int (*omp_query_fn)(void);

static struct {
    gomp_parallel_fn parallel;
    omp_query_fn thread_num, num_threads;
} gomp;
static pthread_once_t gomp_lookup_once = PTHREAD_ONCE_INIT;

static void gomp_lookup(void) {
    gomp_parallel_fn parallel = (gomp_parallel_fn)dlsym(RTLD_DEFAULT, "GOMP_parallel");
    omp_query_fn thread_num = (omp_query_fn)dlsym(RTLD_DEFAULT, "omp_get_thread_num");
    omp_query_fn num_threads = (omp_query_fn)dlsym(RTLD_DEFAULT, "omp_get_num_threads");
    if (!parallel || !thread_num || !num_threads) return;
    gomp.thread_num = thread_num;
    gomp.num_threads = num_threads;
    gomp.parallel = parallel;
}

int mdq_openmp_available(void) {
    pthread_once(&gomp_lookup_once, gomp_lookup);
    return gomp.parallel != NULL;
}

struct team_job {
    void (*body)(void *context, long part);
    void *context;
    long parts;
};

// Each team member takes parts thread_num, thread_num + team size, ...: every part runs exactly
// once whatever team size libgomp grants (fewer threads under OMP_THREAD_LIMIT, one when nested).
static void team_member(void *argument) {
    const struct team_job *job = argument;
    long team = gomp.num_threads();
    for (long part = gomp.thread_num(); part < job->parts; part += team) job->body(job->context, part);
}

int mdq_parallel_for(long parts, void (*body)(void *context, long part), void *context) {
    if (parts <= 0) return 0;
    if (!mdq_openmp_available()) return -1;
    struct team_job job = {body, context, parts};
    gomp.parallel(team_member, &job, (unsigned)parts, 0);
    return 0;
}
