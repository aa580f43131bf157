// Times our GEMM kernels against OpenBLAS on one thread, for the shapes nnbuild runs:
//   clang -O2 -ISources/CKernels/include Benchmarks/gemm_kernels.c Sources/CKernels/kernels.c -lopenblas -lm -o /tmp/gemm_kernels
//   /tmp/gemm_kernels M K N REPEATS     (e.g. 32 64 256 5000: a bilstm_text step in a 32-row batch slice)
// Each round times cblas_sgemm (sgemv for M = 1), nnb_sgemm_packed (weights packed once) and nnb_sgemm_small.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <math.h>
#include <cblas.h>
#include "CKernels.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    long m = atol(argv[1]), k = atol(argv[2]), n = atol(argv[3]); int reps = atoi(argv[4]);
    openblas_set_num_threads(1);
    float *a = malloc(m * k * 4), *b = malloc(k * n * 4), *c = malloc(m * n * 4), *p = malloc(((n + 15) / 16) * 16 * k * 4);
    for (long i = 0; i < m * k; i++) a[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < k * n; i++) b[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    nnb_pack_panels(b, n, k, n, p);
    // The packed kernel must agree with OpenBLAS before its speed means anything.
    float *want = malloc(m * n * 4);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, want, n);
    nnb_sgemm_packed(a, k, p, c, n, m, n, k, 0, 0, 0);
    double worst = 0;
    for (long i = 0; i < m * n; i++) { double d = fabs(c[i] - want[i]) / (1 + fabs(want[i])); if (d > worst) worst = d; }
    printf("packed vs openblas: max rel diff %.1e\n", worst);
    for (int round = 0; round < 3; round++) {
        double t0 = now();
        // One row is a matrix-vector product, which nnbuild's OpenBLAS path runs as sgemv.
        if (m == 1) for (int r = 0; r < reps; r++) cblas_sgemv(CblasRowMajor, CblasTrans, k, n, 1, b, n, a, 1, 0, c, 1);
        else for (int r = 0; r < reps; r++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
        double t1 = now();
        for (int r = 0; r < reps; r++) nnb_sgemm_packed(a, k, p, c, n, m, n, k, 0, 0, 0);
        double t2 = now();
        if (m == 1) for (int r = 0; r < reps; r++) nnb_row_times_matrix(a, b, n, c, n, k, 0, 0, 0);  // "small" is in-place for M = 1
        else for (int r = 0; r < reps; r++) nnb_sgemm_small(a, k, b, n, c, n, m, n, k, 0);
        double t3 = now();
        double f = 2.0 * m * n * k * reps / 1e9;
        printf("m=%ld k=%ld n=%ld  openblas %.1f  packed %.1f  small %.1f GFLOP/s\n", m, k, n, f / (t1 - t0), f / (t2 - t1), f / (t3 - t2));
    }
}
