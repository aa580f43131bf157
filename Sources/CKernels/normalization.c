// Two reductions over rows in double, each in one fixed order on every path, so that the scalar,
// AVX2 and AVX-512 paths give the same bits and a row's result never depends on its batch. (In
// Swift, compiled for any x86-64, both ran on SSE2 pairs of doubles.)
//
// Layer normalization (LayerNormalization over the last axis): each row's mean and variance in
// double, then (x − mean) · (1/√(variance + ε)) · γ + β in float, rounded after each operation
// (no FMA). The sums take element i into lane i mod 8, each lane in i's order, the lanes then
// added in order and the tail (length mod 8 elements) after them in order: AVX2 holds the lanes
// in two vectors of four doubles, AVX-512 in one of eight. The Swift loop took 7% of a batch-1
// Transformer call.
//
// Global average pooling (below): each channel's mean over a sample's steps.
#include "CKernels.h"

// Every sum and product rounds on its own: no multiply-add fused by the compiler.
#pragma clang fp contract(off)

// Σ of the row's elements as the header says, from its lane sums.
static double row_sum(const double lanes[8], const float *row, long wide, long length) {
    double sum = 0;
    for (int l = 0; l < 8; l++) sum += lanes[l];
    for (long i = wide; i < length; i++) sum += (double)row[i];
    return sum;
}

// Σ (x − mean)² likewise.
static double row_squares(const double lanes[8], const float *row, long wide, long length, double mean) {
    double sum = 0;
    for (int l = 0; l < 8; l++) sum += lanes[l];
    for (long i = wide; i < length; i++) {
        double d = (double)row[i] - mean;
        sum += d * d;
    }
    return sum;
}

// 1/√(variance + ε) as a float, from Σ (x − mean)² over `length` values.
static float inverse_deviation(double squares, long length, float epsilon) {
    return (float)(1 / __builtin_sqrt(squares / (double)length + (double)epsilon));
}

static void normalize_scalar(float *row, long length, float shift, float inverse, const float *gamma, const float *beta) {
    for (long j = 0; j < length; j++) {
        float v = (row[j] - shift) * inverse;
        if (gamma) v = v * gamma[j];
        if (beta) v = v + beta[j];
        row[j] = v;
    }
}

static void rows_scalar(float *x, long rows, long length, float epsilon, const float *gamma, const float *beta) {
    long wide = length & ~7L;
    for (long r = 0; r < rows; r++, x += length) {
        double lanes[8] = {0};
        for (long i = 0; i < wide; i += 8)
            for (int l = 0; l < 8; l++) lanes[l] += (double)x[i + l];
        double mean = row_sum(lanes, x, wide, length) / (double)length;
        for (int l = 0; l < 8; l++) lanes[l] = 0;
        for (long i = 0; i < wide; i += 8)
            for (int l = 0; l < 8; l++) {
                double d = (double)x[i + l] - mean;
                lanes[l] += d * d;
            }
        double squares = row_squares(lanes, x, wide, length, mean);
        float inverse = inverse_deviation(squares, length, epsilon);
        normalize_scalar(x, length, (float)mean, inverse, gamma, beta);
    }
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

AVX2 static void rows_avx2(float *x, long rows, long length, float epsilon, const float *gamma, const float *beta) {
    long wide = length & ~7L;
    for (long r = 0; r < rows; r++, x += length) {
        __m256d low = _mm256_setzero_pd(), high = _mm256_setzero_pd();
        for (long i = 0; i < wide; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            low = _mm256_add_pd(low, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            high = _mm256_add_pd(high, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
        double lanes[8];
        _mm256_storeu_pd(lanes, low);
        _mm256_storeu_pd(lanes + 4, high);
        double mean = row_sum(lanes, x, wide, length) / (double)length;
        __m256d center = _mm256_set1_pd(mean);
        low = _mm256_setzero_pd(), high = _mm256_setzero_pd();
        for (long i = 0; i < wide; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            __m256d a = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), center);
            __m256d b = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), center);
            low = _mm256_add_pd(low, _mm256_mul_pd(a, a));
            high = _mm256_add_pd(high, _mm256_mul_pd(b, b));
        }
        _mm256_storeu_pd(lanes, low);
        _mm256_storeu_pd(lanes + 4, high);
        double squares = row_squares(lanes, x, wide, length, mean);
        float inverse = inverse_deviation(squares, length, epsilon);
        float shift = (float)mean;
        __m256 s = _mm256_set1_ps(shift), k = _mm256_set1_ps(inverse);
        long j = 0;
        for (; j < wide; j += 8) {
            __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), s), k);
            if (gamma) v = _mm256_mul_ps(v, _mm256_loadu_ps(gamma + j));
            if (beta) v = _mm256_add_ps(v, _mm256_loadu_ps(beta + j));
            _mm256_storeu_ps(x + j, v);
        }
        normalize_scalar(x + j, length - j, shift, inverse, gamma ? gamma + j : 0, beta ? beta + j : 0);
    }
}

AVX512 static void rows_avx512(float *x, long rows, long length, float epsilon, const float *gamma, const float *beta) {
    long wide = length & ~7L;
    for (long r = 0; r < rows; r++, x += length) {
        __m512d lanes8 = _mm512_setzero_pd();
        for (long i = 0; i < wide; i += 8) lanes8 = _mm512_add_pd(lanes8, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
        double lanes[8];
        _mm512_storeu_pd(lanes, lanes8);
        double mean = row_sum(lanes, x, wide, length) / (double)length;
        __m512d center = _mm512_set1_pd(mean);
        lanes8 = _mm512_setzero_pd();
        for (long i = 0; i < wide; i += 8) {
            __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), center);
            lanes8 = _mm512_add_pd(lanes8, _mm512_mul_pd(d, d));
        }
        _mm512_storeu_pd(lanes, lanes8);
        double squares = row_squares(lanes, x, wide, length, mean);
        float inverse = inverse_deviation(squares, length, epsilon);
        float shift = (float)mean;
        __m512 s = _mm512_set1_ps(shift), k = _mm512_set1_ps(inverse);
        long j = 0;
        for (; j + 16 <= length; j += 16) {
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), s), k);
            if (gamma) v = _mm512_mul_ps(v, _mm512_loadu_ps(gamma + j));
            if (beta) v = _mm512_add_ps(v, _mm512_loadu_ps(beta + j));
            _mm512_storeu_ps(x + j, v);
        }
        normalize_scalar(x + j, length - j, shift, inverse, gamma ? gamma + j : 0, beta ? beta + j : 0);
    }
}
#endif

void nnb_layer_norm(float *x, long rows, long length, float epsilon, const float *gamma, const float *beta, int level) {
    if (rows <= 0 || length <= 0) return;
#if defined(__x86_64__) || defined(_M_X64)
    if (level > nnb_cpu_kernel_level()) level = nnb_cpu_kernel_level();
    if (level >= NNB_KERNELS_AVX512) { rows_avx512(x, rows, length, epsilon, gamma, beta); return; }
    if (level >= NNB_KERNELS_AVX2) { rows_avx2(x, rows, length, epsilon, gamma, beta); return; }
#else
    (void)level;
#endif
    rows_scalar(x, rows, length, epsilon, gamma, beta);
}

// ---- Global average pooling: each channel's mean over the steps of a sample, the sum in double
// in step order (steps a mask leaves out skipped), then divided by the steps counted: channel
// by channel what a scalar loop computes, so every path gives the same bits. Only adding one
// step's channels into the sums is vectorized (across channels); in Swift MobileNetV2's
// 7×7×1280 mean took 11 µs.

typedef void (*add_step_fn)(double *sums, const float *x, long channels);

static void add_step_scalar(double *sums, const float *x, long channels) {
    for (long c = 0; c < channels; c++) sums[c] += (double)x[c];
}

#if defined(__x86_64__) || defined(_M_X64)
AVX2 static void add_step_avx2(double *sums, const float *x, long channels) {
    long c = 0;
    for (; c + 4 <= channels; c += 4) _mm256_storeu_pd(sums + c, _mm256_add_pd(_mm256_loadu_pd(sums + c), _mm256_cvtps_pd(_mm_loadu_ps(x + c))));
    add_step_scalar(sums + c, x + c, channels - c);
}

AVX512 static void add_step_avx512(double *sums, const float *x, long channels) {
    long c = 0;
    for (; c + 8 <= channels; c += 8) _mm512_storeu_pd(sums + c, _mm512_add_pd(_mm512_loadu_pd(sums + c), _mm512_cvtps_pd(_mm256_loadu_ps(x + c))));
    add_step_scalar(sums + c, x + c, channels - c);
}
#endif

int nnb_global_average(const float *x, long batch, long steps, long channels, const unsigned char *mask, float *y, double *sums,
                       int level) {
    if (batch <= 0 || channels <= 0) return 0;
    if (steps < 0) return -1;
    add_step_fn add = add_step_scalar;
#if defined(__x86_64__) || defined(_M_X64)
    if (level > nnb_cpu_kernel_level()) level = nnb_cpu_kernel_level();
    add = level >= NNB_KERNELS_AVX512 ? add_step_avx512 : level >= NNB_KERNELS_AVX2 ? add_step_avx2 : add_step_scalar;
#else
    (void)level;
#endif
    for (long image = 0; image < batch; image++) {
        const float *step = x + image * steps * channels;
        long counted = 0;
        for (long c = 0; c < channels; c++) sums[c] = 0;
        for (long s = 0; s < steps; s++, step += channels) {
            if (mask && !mask[image * steps + s]) continue;
            counted++;
            add(sums, step, channels);
        }
        for (long c = 0; c < channels; c++) y[image * channels + c] = (float)(sums[c] / (double)counted);
    }
    return 0;
}
