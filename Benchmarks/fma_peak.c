// One core's single-precision FMA peak: 12 independent chains of fused multiply-adds (enough to
// hide the FMA latency on the CPUs measured), 16 lanes wide with AVX-512, else 8 with AVX2.
// Prints GFLOP/s (2 per lane per FMA) of this thread's CPU time, the best of 5 rounds:
//   cc -O2 Benchmarks/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
// Benchmarks/layer_efficiency.py builds and runs it as the denominator of its percentages.
#include <stdio.h>
#include <time.h>
#include <immintrin.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

#define CHAINS 12
// Twelve named accumulators, so that every compiler keeps them in registers.
#define ROUND(T, FMA)                                                                              \
    T a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], a4 = acc[4], a5 = acc[5];                \
    T a6 = acc[6], a7 = acc[7], a8 = acc[8], a9 = acc[9], a10 = acc[10], a11 = acc[11];            \
    for (long i = 0; i < iterations; i++) {                                                        \
        a0 = FMA(a0, x, y); a1 = FMA(a1, x, y); a2 = FMA(a2, x, y); a3 = FMA(a3, x, y);            \
        a4 = FMA(a4, x, y); a5 = FMA(a5, x, y); a6 = FMA(a6, x, y); a7 = FMA(a7, x, y);            \
        a8 = FMA(a8, x, y); a9 = FMA(a9, x, y); a10 = FMA(a10, x, y); a11 = FMA(a11, x, y);        \
    }                                                                                              \
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3; acc[4] = a4; acc[5] = a5;                  \
    acc[6] = a6; acc[7] = a7; acc[8] = a8; acc[9] = a9; acc[10] = a10; acc[11] = a11;

// One width's rate: CHAINS accumulators of type T (LANES floats), SET broadcasts, FMA fuses,
// STORE writes one out so that the chains are not optimized away.
#define PEAK(NAME, TARGET, T, LANES, SET, FMA, STORE)                                            \
    __attribute__((target(TARGET))) static double NAME(long iterations) {                       \
        T acc[CHAINS], x = SET(0.999f), y = SET(1e-7f);                                           \
        for (int c = 0; c < CHAINS; c++) acc[c] = SET((float)c);                                   \
        double start = now();                                                                      \
        ROUND(T, FMA)                                                                              \
        double seconds = now() - start;                                                            \
        float sink = 0, lanes[LANES];                                                              \
        for (int c = 0; c < CHAINS; c++) { STORE(lanes, acc[c]); sink += lanes[0]; }               \
        if (sink == 12345.0f) printf(" ");                                                         \
        return 2.0 * LANES * CHAINS * iterations / seconds / 1e9;                                  \
    }
PEAK(avx512, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps)
PEAK(avx2, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps)

int main(void) {
    __builtin_cpu_init();
    int wide = __builtin_cpu_supports("avx512f");
    if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) { printf("0 none\n"); return 0; }
    double best = 0;
    for (int round = 0; round < 5; round++) {
        double rate = wide ? avx512(50000000) : avx2(50000000);
        if (rate > best) best = rate;
    }
    printf("%.1f %s\n", best, wide ? "avx512" : "avx2");
    return 0;
}
