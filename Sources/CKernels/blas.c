// OpenBLAS's sgemm, loaded on first use. nnbuild calls OpenBLAS only for the products that
// ExecutionSettings.batchVariantBLAS sends to it, so it is not linked: a process that never asks
// for it does not map the library (1.6 MB resident, with libgfortran and libquadmath 2.1 MB), run
// its constructor or start its thread (2 ms of start-up).
#include "CKernels.h"

#include <dlfcn.h>
#include <pthread.h>

// cblas_sgemm as OpenBLAS exports it (CBLAS enums are ints; blasint is int in libopenblas.so.0,
// the 32-bit-index build).
typedef void (*nnb_cblas_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                                   const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*nnb_openblas_threads_fn)(int);

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

static nnb_cblas_sgemm_fn sgemm;
static pthread_once_t loaded = PTHREAD_ONCE_INIT;

static void load(void) {
    static const char *const names[] = {"libopenblas.so.0", "libopenblas.so"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!library) continue;
        nnb_cblas_sgemm_fn found = (nnb_cblas_sgemm_fn)dlsym(library, "cblas_sgemm");
        if (!found) { dlclose(library); continue; }
        // One thread, set once: nnbuild's own threads split the products.
        nnb_openblas_threads_fn threads = (nnb_openblas_threads_fn)dlsym(library, "openblas_set_num_threads");
        if (threads) threads(1);
        sgemm = found;
        return;
    }
}

int nnb_blas_available(void) {
    pthread_once(&loaded, load);
    return sgemm != 0;
}

int nnb_blas_sgemm(int transpose_b, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                   float beta, float *c, long ldc) {
    if (!nnb_blas_available()) return 0;
    sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, transpose_b ? CBLAS_TRANS : CBLAS_NO_TRANS, (int)m, (int)n, (int)k, 1.0f,
          a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
    return 1;
}
