// AVX-512 (F, BW, VL, DQ) twins of the element-wise kernels in kernels.c: the recurrent gates
// (exp, sigmoid, tanh, the fused LSTM and GRU gate passes), gelu, softmax and max pooling's
// window, 16 lanes wide. Compiled per function (target attribute), never with global flags, so the binary still
// runs on any x86-64; the public entry points in kernels.c call these when
// nnb_kernel_level() is NNB_KERNELS_AVX512.
//
// Every function here computes each lane with exactly the operations, operand order and
// constants of its AVX2 twin (one more width, nothing else), so the two paths give the same bits:
// a model's output does not change with the CPU's vector width. Tails run through masked loads
// and stores of the same vector code, so an element's value never depends on the count, the
// batch or its position.
#include "CKernels.h"
#include <math.h>

void nnb_softmax_row_exact(float *x, long length, int log_softmax) {
    float peak = -INFINITY;
    for (long i = 0; i < length; i++) peak = x[i] > peak ? x[i] : peak;
    if (!isfinite(peak)) peak = 0;
    double sum = 0;
    for (long i = 0; i < length; i++) sum += (double)expf(x[i] - peak);
    if (log_softmax) {
        float logSum = (float)log(sum);
        for (long i = 0; i < length; i++) x[i] = x[i] - peak - logSum;
    } else {
        for (long i = 0; i < length; i++) x[i] = (float)((double)expf(x[i] - peak) / sum);
    }
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

// The first `count` lanes (count < 16) of a 16-lane vector.
AVX512 static inline __mmask16 first_lanes(long count) { return (__mmask16)((1u << count) - 1u); }

// The first min(count, 16) floats at p, zeros after: a plain load for a whole vector (a masked
// one, even with every lane set, made the GRU gates a third slower inside gru_text on Zen 5,
// though not in a loop of their own), a masked load that reads nothing past the count for a tail.
AVX512 static inline __m512 load16(const float *p, long count) {
    return count >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(first_lanes(count), p);
}

// Stores the first min(count, 16) lanes of v at p.
AVX512 static inline void store16(float *p, __m512 v, long count) {
    if (count >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, first_lanes(count), v);
}

// exp8 of kernels.c, 16 lanes: Cephes's expf, n = round(x / ln 2) by the 1.5·2^23 trick, a
// degree-6 polynomial on the remainder, 2^n built in the exponent bits. The same clamp (x second,
// so NaN stays NaN: vmaxps/vminps return their second operand when either is NaN), the same
// FMA-folded range reduction, the same polynomial in the same order: bit for bit exp8's result.
AVX512 static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.3f), _mm512_min_ps(_mm512_set1_ps(88.3f), x));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
    __m512 fx = _mm512_sub_ps(shifted, magic);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fmadd_ps(fx, _mm512_set1_ps(2.12194440e-4f), x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_add_ps(_mm512_fmadd_ps(y, z, x), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000 - 127));
    return _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(bits, 23)));
}

// 1 / (1 + e^-x), an exact division as sigmoid8's.
AVX512 static inline __m512 sigmoid16(__m512 v) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// tanh(x) = 2σ(2x) − 1, as tanh8.
AVX512 static inline __m512 tanh16(__m512 v) {
    __m512 e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), v));
    __m512 s = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    return _mm512_fmsub_ps(_mm512_set1_ps(2.0f), s, _mm512_set1_ps(1.0f));
}

AVX512 void nnb_sigmoid_avx512(float *x, long count) {
    for (long i = 0; i < count; i += 16) store16(x + i, sigmoid16(load16(x + i, count - i)), count - i);
}

AVX512 void nnb_tanh_avx512(float *x, long count) {
    for (long i = 0; i < count; i += 16) store16(x + i, tanh16(load16(x + i, count - i)), count - i);
}

AVX512 void nnb_lstm_gates_avx512(float *z, const float *c_in, float *c_out, float *h_out, long stride, long count) {
    // Two passes, as the AVX2 kernel: the gates and c', then h' = o·tanh(c'), so that every
    // iteration of each pass is independent of the others. The last, partial group of units runs
    // the same code on masked loads and stores.
    float *activated_o = z + 3 * stride;
    for (long u = 0; u < count; u += 16) {
        long n = count - u;
        __m512 i = sigmoid16(load16(z + u, n)), f = sigmoid16(load16(z + stride + u, n));
        __m512 g = tanh16(load16(z + 2 * stride + u, n)), o = sigmoid16(load16(z + 3 * stride + u, n));
        store16(c_out + u, _mm512_fmadd_ps(f, load16(c_in + u, n), _mm512_mul_ps(i, g)), n);
        store16(activated_o + u, o, n);
    }
    for (long u = 0; u < count; u += 16) {
        long n = count - u;
        store16(h_out + u, _mm512_mul_ps(load16(activated_o + u, n), tanh16(load16(c_out + u, n))), n);
    }
}

AVX512 void nnb_gru_gates_avx512(float *x, const float *r, const float *h_in, float *h_out, long stride, long count) {
    // Two passes, as the AVX2 kernel: the update gate z and the candidate ĥ (stored over x's z
    // and h thirds), then h' = z·h + (1 − z)·ĥ.
    for (long u = 0; u < count; u += 16) {
        long n = count - u;
        __m512 z = sigmoid16(_mm512_add_ps(load16(x + u, n), load16(r + u, n)));
        __m512 reset = sigmoid16(_mm512_add_ps(load16(x + stride + u, n), load16(r + stride + u, n)));
        __m512 candidate = tanh16(_mm512_fmadd_ps(reset, load16(r + 2 * stride + u, n), load16(x + 2 * stride + u, n)));
        store16(x + u, z, n);
        store16(x + 2 * stride + u, candidate, n);
    }
    for (long u = 0; u < count; u += 16) {
        long n = count - u;
        __m512 z = load16(x + u, n), candidate = load16(x + 2 * stride + u, n);
        // z·h + (1 − z)·ĥ = ĥ + z·(h − ĥ): one FMA, and h' = h exactly when z = 1.
        store16(h_out + u, _mm512_fmadd_ps(z, _mm512_sub_ps(load16(h_in + u, n), candidate), candidate), n);
    }
}

// erfc8 of kernels.c, 16 lanes: Numerical Recipes' erfcc, the same operations in the same order.
AVX512 static inline __m512 erfc16(__m512 z) {
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    return _mm512_mul_ps(t, exp16(_mm512_fnmadd_ps(z, z, p)));
}

// gelu8 of kernels.c, 16 lanes.
AVX512 static inline __m512 gelu16(__m512 x) {
    __m512 magnitude = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), x);
    __m512 e = erfc16(_mm512_mul_ps(magnitude, _mm512_set1_ps(0.70710678118654752f)));
    __mmask16 positive = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    __m512 onePlusErf = _mm512_mask_blend_ps(positive, e, _mm512_sub_ps(_mm512_set1_ps(2.0f), e));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), onePlusErf);
}

AVX512 void nnb_gelu_avx512(float *x, long count) {
    for (long i = 0; i < count; i += 16) store16(x + i, gelu16(load16(x + i, count - i)), count - i);
}

// e's 16 floats as two vectors of 8 doubles.
AVX512 static inline __m512d low_doubles(__m512 e) { return _mm512_cvtps_pd(_mm512_castps512_ps256(e)); }
AVX512 static inline __m512d high_doubles(__m512 e) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)); }

AVX512 void nnb_softmax_avx512(float *x, long rows, long length, int log) {
    // nnb_softmax's steps and order: the peak, Σ e^(x − peak) as sixteen partial double sums
    // (element i into sum i mod 16) added in lane order, then e·(1/Σ) in double, or x − peak −
    // log Σ.
    for (long row = 0; row < rows; row++, x += length) {
        __m512 best = _mm512_set1_ps(-__builtin_inff());
        for (long i = 0; i < length; i += 16) {
            __mmask16 m = length - i >= 16 ? (__mmask16)0xFFFF : first_lanes(length - i);
            best = _mm512_mask_max_ps(best, m, load16(x + i, length - i), best);
        }
        float lanes[16];
        _mm512_storeu_ps(lanes, best);
        float peak = lanes[0];
        for (int q = 1; q < 16; q++) peak = lanes[q] > peak ? lanes[q] : peak;
        if (!(peak - peak == 0.0f)) {
            // ±∞, or no number at all: exp16's clamp would make e^∞ and e^−∞ finite.
            nnb_softmax_row_exact(x, length, log);
            continue;
        }
        peak += 0.0f;  // −0 → +0: which zero the lanes kept must not matter
        __m512 shift = _mm512_set1_ps(peak);
        __m512d low = _mm512_setzero_pd(), high = _mm512_setzero_pd();
        for (long i = 0; i < length; i += 16) {
            __mmask16 m = length - i >= 16 ? (__mmask16)0xFFFF : first_lanes(length - i);
            // Lanes past the row add exactly zero, and so does d = x − peak below −87.3 (see
            // nnb_softmax).
            __m512 d = _mm512_sub_ps(load16(x + i, length - i), shift);
            __mmask16 kept = m & (__mmask16)~_mm512_cmp_ps_mask(d, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
            __m512 e = _mm512_maskz_mov_ps(kept, exp16(d));
            low = _mm512_add_pd(low, low_doubles(e));
            high = _mm512_add_pd(high, high_doubles(e));
            if (!log) store16(x + i, e, length - i);
        }
        double partial[16], sum = 0;
        _mm512_storeu_pd(partial, low);
        _mm512_storeu_pd(partial + 8, high);
        for (int q = 0; q < 16; q++) sum += partial[q];
        if (log) {
            __m512 logSum = _mm512_set1_ps((float)__builtin_log(sum));
            for (long i = 0; i < length; i += 16)
                store16(x + i, _mm512_sub_ps(_mm512_sub_ps(load16(x + i, length - i), shift), logSum), length - i);
        } else {
            __m512d scale = _mm512_set1_pd(1.0 / sum);
            for (long i = 0; i < length; i += 16) {
                __m512 e = load16(x + i, length - i);
                __m256 a = _mm512_cvtpd_ps(_mm512_mul_pd(low_doubles(e), scale)), b = _mm512_cvtpd_ps(_mm512_mul_pd(high_doubles(e), scale));
                store16(x + i, _mm512_insertf32x8(_mm512_castps256_ps512(a), b, 1), length - i);
            }
        }
    }
}

AVX512 void nnb_max_window_avx512(const float *corner, long rows, long row_step, long columns, long column_step, long channels,
                                  float *out) {
    // 64 channels at a time (four independent max chains), then 16, then the rest under a mask.
    // Each lane is max(cell, best) over the cells in the same order as the AVX2 kernel: NaN cells
    // passed over, and of two equal zeros the same one kept.
    const __m512 lowest = _mm512_set1_ps(-__builtin_inff());
    long c = 0;
    for (; c + 64 <= channels; c += 64) {
        __m512 b0 = lowest, b1 = lowest, b2 = lowest, b3 = lowest;
        for (long r = 0; r < rows; r++)
            for (long q = 0; q < columns; q++) {
                const float *cell = corner + r * row_step + q * column_step + c;
                b0 = _mm512_max_ps(_mm512_loadu_ps(cell), b0);
                b1 = _mm512_max_ps(_mm512_loadu_ps(cell + 16), b1);
                b2 = _mm512_max_ps(_mm512_loadu_ps(cell + 32), b2);
                b3 = _mm512_max_ps(_mm512_loadu_ps(cell + 48), b3);
            }
        _mm512_storeu_ps(out + c, b0);
        _mm512_storeu_ps(out + c + 16, b1);
        _mm512_storeu_ps(out + c + 32, b2);
        _mm512_storeu_ps(out + c + 48, b3);
    }
    for (; c + 32 <= channels; c += 32) {
        __m512 b0 = lowest, b1 = lowest;
        for (long r = 0; r < rows; r++)
            for (long q = 0; q < columns; q++) {
                const float *cell = corner + r * row_step + q * column_step + c;
                b0 = _mm512_max_ps(_mm512_loadu_ps(cell), b0);
                b1 = _mm512_max_ps(_mm512_loadu_ps(cell + 16), b1);
            }
        _mm512_storeu_ps(out + c, b0);
        _mm512_storeu_ps(out + c + 16, b1);
    }
    for (; c < channels; c += 16) {
        long n = channels - c;
        __m512 best = lowest;
        for (long r = 0; r < rows; r++)
            for (long q = 0; q < columns; q++) best = _mm512_max_ps(load16(corner + r * row_step + q * column_step + c, n), best);
        store16(out + c, best, n);
    }
}

#endif
