// Times our GEMM kernels against OpenBLAS on one thread, for the shapes nnbuild runs:
//   clang -O2 -ISources/CKernels/include Benchmarks/gemm_kernels.c Sources/CKernels/*.c \
//         -lopenblas -lm -ldl -lpthread -o /tmp/gemm_kernels
//   /tmp/gemm_kernels M K N REPEATS     (e.g. 32 64 256 5000: a bilstm_text step in a 32-row batch slice)
//   /tmp/gemm_kernels conv H W C F REPEATS   (a 3×3 'same' convolution at stride 1 on one H×W×C image,
//                                             F filters, as nnb_conv_packed runs it: an implicit GEMM)
// First it checks that the AVX2 and AVX-512 kernels give the same bits (they must: each element
// is one FMA chain in k's order) and that they agree with OpenBLAS. Then, in each of 3 rounds,
// one after another in this process: cblas_sgemm (sgemv for M = 1), the packed product on the
// AVX2 path, the same on the AVX-512 path, and the unpacked product (nnb_sgemm_small, or for
// M = 1 the in-place row-times-matrix product) on both paths. Figures are GFLOP/s of this thread's
// CPU time; compare only figures of one run. A path this CPU lacks is left out.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <cblas.h>
#include "CKernels.h"
// This thread's CPU time, not the wall clock: on a machine shared with other busy processes the
// wall clock counts the time this thread waited for a core, and varied 20-fold between rounds.
static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static float *randoms(long count) {
    float *x = malloc(count * sizeof(float));
    for (long i = 0; i < count; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return x;
}
static const char *path_name(int level) { return level == NNB_KERNELS_AVX512 ? "avx512" : level == NNB_KERNELS_AVX2 ? "avx2" : "baseline"; }

static int conv(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: gemm_kernels conv H W C F REPEATS\n"); return 64; }
    long h = atol(argv[2]), w = atol(argv[3]), ch = atol(argv[4]), f = atol(argv[5]); int reps = atoi(argv[6]);
    long ph = h + 2, pw = w + 2, k = 9 * ch, pixels = h * w;
    float *x = randoms(ph * pw * ch), *kernel = randoms(k * f), *bias = randoms(f);
    float *packed = malloc(((f + 15) / 16) * 16 * k * sizeof(float)), *y = malloc(pixels * f * sizeof(float)), *y2 = malloc(pixels * f * sizeof(float));
    nnb_pack_panels(kernel, f, k, f, packed);
    int best = nnb_cpu_kernel_level(), levels[2] = {NNB_KERNELS_AVX2, NNB_KERNELS_AVX512}, count = best >= NNB_KERNELS_AVX512 ? 2 : 1;
    if (best < NNB_KERNELS_AVX2) { printf("this CPU has no AVX2: nothing to time\n"); return 0; }
    // One kernel row (3 taps × C channels) is one run of 3C floats; kernel rows lie a padded row apart.
#define CONV(out) nnb_conv_packed(x, ph, pw, ch, h, w, 1, 1, 3, pw * ch, 1, 0, 3 * ch, packed, f, out, f, 0, pixels, &(nnb_epilogue){bias, 0, 0, 0, 0, NNB_ACTIVATION_RELU})
    nnb_force_kernel_level(levels[0]); CONV(y);
    if (count == 2) {
        nnb_force_kernel_level(levels[1]); CONV(y2);
        printf("conv avx512 vs avx2: %s\n", memcmp(y, y2, pixels * f * sizeof(float)) == 0 ? "bit-identical" : "DIFFERENT BITS");
    }
    for (int round = 0; round < 3; round++) {
        printf("conv %ldx%ldx%ld -> %ld (m=%ld k=%ld n=%ld)", h, w, ch, f, pixels, k, f);
        for (int l = 0; l < count; l++) {
            nnb_force_kernel_level(levels[l]);
            double t0 = now();
            for (int r = 0; r < reps; r++) CONV(y);
            printf("  %s %.1f", path_name(levels[l]), 2.0 * pixels * k * f * reps / 1e9 / (now() - t0));
        }
        printf(" GFLOP/s\n");
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "conv") == 0) return conv(argc, argv);
    if (argc < 5) { fprintf(stderr, "usage: gemm_kernels M K N REPEATS | conv H W C F REPEATS\n"); return 64; }
    long m = atol(argv[1]), k = atol(argv[2]), n = atol(argv[3]); int reps = atoi(argv[4]);
    openblas_set_num_threads(1);
    int best = nnb_cpu_kernel_level(), levels[2] = {NNB_KERNELS_AVX2, NNB_KERNELS_AVX512}, count = best >= NNB_KERNELS_AVX512 ? 2 : 1;
    if (best < NNB_KERNELS_AVX2) { printf("this CPU has no AVX2: nothing to time\n"); return 0; }
    float *a = randoms(m * k), *b = randoms(k * n), *c = malloc(m * n * 4), *c2 = malloc(m * n * 4), *p = malloc(((n + 15) / 16) * 16 * k * 4);
    nnb_pack_panels(b, n, k, n, p);
    // The kernels must agree with OpenBLAS, and the two paths bit for bit, before speed means anything.
    float *want = malloc(m * n * 4);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, want, n);
    nnb_force_kernel_level(levels[0]);
    nnb_sgemm_packed(a, k, p, c, n, m, n, k, 0, 0, 0);
    double worst = 0;
    for (long i = 0; i < m * n; i++) { double d = fabs(c[i] - want[i]) / (1 + fabs(want[i])); if (d > worst) worst = d; }
    printf("packed vs openblas: max rel diff %.1e\n", worst);
    if (count == 2) {
        nnb_force_kernel_level(levels[1]);
        nnb_sgemm_packed(a, k, p, c2, n, m, n, k, 0, 0, 0);
        printf("packed avx512 vs avx2: %s\n", memcmp(c, c2, m * n * 4) == 0 ? "bit-identical" : "DIFFERENT BITS");
    }
    for (int round = 0; round < 3; round++) {
        double f = 2.0 * m * n * k * reps / 1e9, t0 = now();
        // One row is a matrix-vector product, which nnbuild's OpenBLAS path runs as sgemv.
        if (m == 1) for (int r = 0; r < reps; r++) cblas_sgemv(CblasRowMajor, CblasTrans, k, n, 1, b, n, a, 1, 0, c, 1);
        else for (int r = 0; r < reps; r++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
        printf("m=%ld k=%ld n=%ld  openblas %.1f", m, k, n, f / (now() - t0));
        for (int l = 0; l < count; l++) {
            nnb_force_kernel_level(levels[l]);
            t0 = now();
            for (int r = 0; r < reps; r++) nnb_sgemm_packed(a, k, p, c, n, m, n, k, 0, 0, 0);
            printf("  packed %s %.1f", path_name(levels[l]), f / (now() - t0));
        }
        for (int l = 0; l < count; l++) {
            nnb_force_kernel_level(levels[l]);
            t0 = now();
            if (m == 1) for (int r = 0; r < reps; r++) nnb_row_times_matrix(a, b, n, c, n, k, 0, 0, 0);  // "small" is in-place for M = 1
            else for (int r = 0; r < reps; r++) nnb_sgemm_small(a, k, b, n, c, n, m, n, k, 0);
            printf("  small %s %.1f", path_name(levels[l]), f / (now() - t0));
        }
        printf(" GFLOP/s\n");
    }
    return 0;
}
