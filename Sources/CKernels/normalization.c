// Layer normalization of rows (LayerNormalization over the last axis), and global average
// pooling (below): each row's mean and
// variance in double, then (x − mean) · (1/√(variance + ε)) · γ + β in float. The sums take
// element i into lane i mod 8, each lane in i's order, the lanes then added in order and the
// tail (length mod 8 elements) after them in order: the same on every path, so the scalar, AVX2
// (two vectors of four doubles) and AVX-512 (one of eight) paths give the same bits, and a row's
// result never depends on its batch. The normalizing pass rounds after each operation (no FMA).
// In Swift, compiled for any x86-64, the sums ran on SSE2 pairs of doubles: 7% of a batch-1
// Transformer call.
#include "CKernels.h"
#include <stdlib.h>

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
        float inverse = (float)(1 / __builtin_sqrt(squares / (double)length + (double)epsilon));
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
        float inverse = (float)(1 / __builtin_sqrt(squares / (double)length + (double)epsilon));
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
        float inverse = (float)(1 / __builtin_sqrt(squares / (double)length + (double)epsilon));
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
// by channel what a scalar loop computes, so every path gives the same bits. Vectorized across
// channels; in Swift (SSE2, two doubles at a time) MobileNetV2's 7×7×1280 mean took 11 µs.

static long average_scalar(const float *x, long steps, long channels, const unsigned char *mask, double *sums) {
    long counted = 0;
    for (long c = 0; c < channels; c++) sums[c] = 0;
    for (long s = 0; s < steps; s++, x += channels) {
        if (mask && !mask[s]) continue;
        counted++;
        for (long c = 0; c < channels; c++) sums[c] += (double)x[c];
    }
    return counted;
}

#if defined(__x86_64__) || defined(_M_X64)
AVX2 static long average_avx2(const float *x, long steps, long channels, const unsigned char *mask, double *sums) {
    long counted = 0, wide = channels & ~3L;
    for (long c = 0; c < channels; c++) sums[c] = 0;
    for (long s = 0; s < steps; s++, x += channels) {
        if (mask && !mask[s]) continue;
        counted++;
        long c = 0;
        for (; c < wide; c += 4) _mm256_storeu_pd(sums + c, _mm256_add_pd(_mm256_loadu_pd(sums + c), _mm256_cvtps_pd(_mm_loadu_ps(x + c))));
        for (; c < channels; c++) sums[c] += (double)x[c];
    }
    return counted;
}

AVX512 static long average_avx512(const float *x, long steps, long channels, const unsigned char *mask, double *sums) {
    long counted = 0, wide = channels & ~7L;
    for (long c = 0; c < channels; c++) sums[c] = 0;
    for (long s = 0; s < steps; s++, x += channels) {
        if (mask && !mask[s]) continue;
        counted++;
        long c = 0;
        for (; c < wide; c += 8) _mm512_storeu_pd(sums + c, _mm512_add_pd(_mm512_loadu_pd(sums + c), _mm512_cvtps_pd(_mm256_loadu_ps(x + c))));
        for (; c < channels; c++) sums[c] += (double)x[c];
    }
    return counted;
}
#endif

int nnb_global_average(const float *x, long batch, long steps, long channels, const unsigned char *mask, float *y, int level) {
    if (batch <= 0 || channels <= 0) return 0;
    if (steps < 0 || (unsigned long)channels > (~0UL) / sizeof(double)) return -1;
    double *sums = malloc((size_t)channels * sizeof(double));
    if (!sums) return -1;
#if defined(__x86_64__) || defined(_M_X64)
    if (level > nnb_cpu_kernel_level()) level = nnb_cpu_kernel_level();
#endif
    for (long image = 0; image < batch; image++) {
        const float *sample = x + image * steps * channels;
        const unsigned char *flags = mask ? mask + image * steps : 0;
        long counted;
#if defined(__x86_64__) || defined(_M_X64)
        if (level >= NNB_KERNELS_AVX512) counted = average_avx512(sample, steps, channels, flags, sums);
        else if (level >= NNB_KERNELS_AVX2) counted = average_avx2(sample, steps, channels, flags, sums);
        else counted = average_scalar(sample, steps, channels, flags, sums);
#else
        (void)level;
        counted = average_scalar(sample, steps, channels, flags, sums);
#endif
        for (long c = 0; c < channels; c++) y[image * channels + c] = (float)(sums[c] / (double)counted);
    }
    free(sums);
    return 0;
}
