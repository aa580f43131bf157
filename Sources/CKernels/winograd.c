// Winograd's minimal filtering F(2×2, 3×3) for 3×3 convolutions at stride 1: each 2×2 block of
// output pixels comes from a 4×4 input tile with 16 products per channel pair instead of 36, a
// 2.25× cut in multiplies (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
// 2016). The 16 products of a block of tiles are 16 GEMMs on the packed AVX2 kernel.
//
//   V = Bᵀ d B (input tile),  U = G g Gᵀ (kernel: at load, or on each call),  Y = Aᵀ (U ⊙ V) A
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1]
#include "CKernels.h"
#include "gemm_avx512.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
typedef __m256 vec;
#define LOAD(p) _mm256_loadu_ps(p)
#define STORE(p, v) _mm256_storeu_ps(p, v)
#define ADD(a, b) _mm256_add_ps(a, b)
#define SUB(a, b) _mm256_sub_ps(a, b)
#define SET1(v) _mm256_set1_ps(v)
#define WIDTH 8
#else
#define AVX2
typedef float vec;
#define LOAD(p) (*(p))
#define STORE(p, v) (*(p) = (v))
#define ADD(a, b) ((a) + (b))
#define SUB(a, b) ((a) - (b))
#define SET1(v) (v)
#define WIDTH 1
#endif

long nnb_winograd_plane(long channels, long filters) { return (filters + 15) / 16 * 16 * channels + 16; }

void nnb_winograd_taps(const float *kernel, long channels, long filters, float *taps) {
    long panels = (filters + 15) / 16, plane = channels * filters;
    for (long p = 0; p < panels; p++)
        for (long c = 0; c < channels; c++)
            for (long tap = 0; tap < 9; tap++)
                for (long q = 0; q < 16; q++) {
                    long f = p * 16 + q;
                    taps[((p * channels + c) * 9 + tap) * 16 + q] = f < filters ? kernel[tap * plane + c * filters + f] : 0.0f;
                }
}

// U = G g Gᵀ lane by lane, in double and rounded to float once: the bits of the scalar transform
// this replaced (in float, a rounding after each of its four additions, it moved ResNet50 at
// 32×32 from Keras by 1.2e-5, past 1e-5). G's rows (1 0 0) and (0 0 1) pick a row of g,
// (½ ½ ½) and (½ −½ ½) are ((g₀ ± g₁) + g₂)·½, the same on the columns: halving is exact, so
// these are the bits of the products and sums in G's order. Each weight pair's 16 values go to
// 16 matrices a cache line more than a multiple of 4 KB apart (nnb_winograd_plane): exactly a
// multiple, the 16 stores fell into the same L1 set, and a 256×256 kernel took 320 µs against 99
// (in float, one core of the AMD EPYC, Zen 5).
#if defined(__x86_64__) || defined(_M_X64)
typedef __m256d dvec;
#define DWIDTH 4
#define DLOAD(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define DSTORE(p, v) _mm_storeu_ps(p, _mm256_cvtpd_ps(v))
#define DADD(a, b) _mm256_add_pd(a, b)
#define DSUB(a, b) _mm256_sub_pd(a, b)
#define DMUL(a, b) _mm256_mul_pd(a, b)
#define DSET1(v) _mm256_set1_pd(v)
#else
typedef double dvec;
#define DWIDTH 1
#define DLOAD(p) ((double)*(p))
#define DSTORE(p, v) (*(p) = (float)(v))
#define DADD(a, b) ((a) + (b))
#define DSUB(a, b) ((a) - (b))
#define DMUL(a, b) ((a) * (b))
#define DSET1(v) ((double)(v))
#endif

// How far ahead (floats) the transform prefetches the taps it reads, from memory on each call:
// 8 weight pairs, 4.5 KB. Without, the loads waited on memory one line at a time: 14×14×256→256
// with its kernel out of cache, one core of the AMD EPYC (Zen 5), 847 → 625 µs; ResNet50's
// 28×28 layers in the model 0.55 → 0.49 ms.
#define TAPS_AHEAD (8 * 9 * 16)

// One weight pair's 16 values, `lane`..<lane+width of a panel: g the pair's 9 taps (16 lanes
// apart), u its first value (the next `plane` floats on).
#define WINOGRAD_TRANSFORM_LANES(dvec, DLOAD, DSTORE, DADD, DSUB, DMUL, half)                              \
    {                                                                                                      \
        dvec h[4][3];                                                                                      \
        for (int b = 0; b < 3; b++) {                                                                      \
            dvec w0 = DLOAD(g + b * 16 + lane), w1 = DLOAD(g + (3 + b) * 16 + lane), w2 = DLOAD(g + (6 + b) * 16 + lane); \
            h[0][b] = w0;                                                                                  \
            h[1][b] = DMUL(DADD(DADD(w0, w1), w2), half);                                                  \
            h[2][b] = DMUL(DADD(DSUB(w0, w1), w2), half);                                                  \
            h[3][b] = w2;                                                                                  \
        }                                                                                                  \
        for (int i = 0; i < 4; i++) {                                                                      \
            DSTORE(u + (i * 4 + 0) * plane + lane, h[i][0]);                                               \
            DSTORE(u + (i * 4 + 1) * plane + lane, DMUL(DADD(DADD(h[i][0], h[i][1]), h[i][2]), half));     \
            DSTORE(u + (i * 4 + 2) * plane + lane, DMUL(DADD(DSUB(h[i][0], h[i][1]), h[i][2]), half));     \
            DSTORE(u + (i * 4 + 3) * plane + lane, h[i][2]);                                               \
        }                                                                                                  \
    }

#if defined(__x86_64__) || defined(_M_X64)
// The same, 8 lanes of double a vector: half the instructions of the AVX2 loop, the conversions
// from and to float most of them (a 256×256 kernel on one core of the AMD EPYC: 112 → 71 µs).
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define ZLOAD(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define ZSTORE(p, v) _mm256_storeu_ps(p, _mm512_cvtpd_ps(v))
AVX512 static void transform_avx512(const float *taps, long channels, long panel_first, long panel_end, float *dst, long plane) {
    const __m512d half = _mm512_set1_pd(0.5);
    for (long p = panel_first; p < panel_end; p++)
        for (long c = 0; c < channels; c++) {
            const float *g = taps + (p * channels + c) * 9 * 16;
            float *u = dst + ((p - panel_first) * channels + c) * 16;
            for (int line = 0; line < 9; line++) _mm_prefetch((const char *)(g + TAPS_AHEAD + line * 16), _MM_HINT_T0);
            for (long lane = 0; lane < 16; lane += 8)
                WINOGRAD_TRANSFORM_LANES(__m512d, ZLOAD, ZSTORE, _mm512_add_pd, _mm512_sub_pd, _mm512_mul_pd, half)
        }
}
#endif

// Panels panel_first..<panel_end, the first at `dst`, the 16 matrices `plane` floats apart.
AVX2 static void transform_panels(const float *taps, long channels, long panel_first, long panel_end, float *dst, long plane) {
#if defined(__x86_64__) || defined(_M_X64)
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) {
        transform_avx512(taps, channels, panel_first, panel_end, dst, plane);
        return;
    }
#endif
    const dvec half = DSET1(0.5);
    for (long p = panel_first; p < panel_end; p++)
        for (long c = 0; c < channels; c++) {
            const float *g = taps + (p * channels + c) * 9 * 16;
            float *u = dst + ((p - panel_first) * channels + c) * 16;
#if defined(__x86_64__) || defined(_M_X64)
            for (int line = 0; line < 9; line++) _mm_prefetch((const char *)(g + TAPS_AHEAD + line * 16), _MM_HINT_T0);
#endif
            for (long lane = 0; lane < 16; lane += DWIDTH) WINOGRAD_TRANSFORM_LANES(dvec, DLOAD, DSTORE, DADD, DSUB, DMUL, half)
        }
}

void nnb_winograd_transform(const float *taps, long channels, long filters, long panel_first, long panel_end, float *packed) {
    transform_panels(taps, channels, panel_first, panel_end, packed + panel_first * channels * 16, nnb_winograd_plane(channels, filters));
}

// `count` floats on a 64-byte boundary inside a block of malloc's (*block, to free; NULL when there
// is no memory): the products stream these planes 16 floats at a time, and on the Intel Xeon
// (family 6, model 207) a load straddling two cache lines, as every other one from malloc's 16-byte
// alignment did, costs a second L1 access. (Not posix_memalign: its carved-off remainders left
// the heap fragmented, and ResNet50's peak memory rose.)
static float *line_aligned_floats(long count, void **block) {
    *block = malloc(sizeof(float) * (size_t)count + 64);
    if (!*block) return NULL;
    uintptr_t address = (uintptr_t)*block;
    return (float *)((address + 63) & ~(uintptr_t)63);
}

// Tiles per block: a multiple of the GEMM's register block (nnb_gemm_block_rows), four of them,
// fewer while the block's transformed inputs (16 × block × C floats) and products (16 × block × F)
// would not stay in L2 (1 MB) between the three stages.
static long tiles_per_block(long channels, long filters) {
    long rows = nnb_gemm_block_rows(), block = 4 * rows;
    while (block > rows && 16 * block * (channels + filters) * (long)sizeof(float) > (1L << 20)) block -= rows;
    return block;
}

// V[ξ][t][c..c+WIDTH) = (Bᵀ d B)[ξ] for the 4×4 tile whose corner is `corner` (row stride
// `row_step` floats, column stride `channels`).
AVX2 static inline void transform_input(const float *corner, long row_step, long channels, float *v, long plane) {
    vec d[4][4], t[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) d[i][j] = LOAD(corner + i * row_step + j * channels);
    for (int j = 0; j < 4; j++) {
        t[0][j] = SUB(d[0][j], d[2][j]);
        t[1][j] = ADD(d[1][j], d[2][j]);
        t[2][j] = SUB(d[2][j], d[1][j]);
        t[3][j] = SUB(d[1][j], d[3][j]);
    }
    for (int i = 0; i < 4; i++) {
        STORE(v + (i * 4 + 0) * plane, SUB(t[i][0], t[i][2]));
        STORE(v + (i * 4 + 1) * plane, ADD(t[i][1], t[i][2]));
        STORE(v + (i * 4 + 2) * plane, SUB(t[i][2], t[i][1]));
        STORE(v + (i * 4 + 3) * plane, SUB(t[i][1], t[i][3]));
    }
}

// The 2×2 outputs Aᵀ m A of one tile for filters f..f+WIDTH, from m[ξ] at m + ξ·plane.
AVX2 static inline void transform_output(const float *m, long plane, vec y[2][2]) {
    vec s[2][4];
    for (int j = 0; j < 4; j++) {
        vec m0 = LOAD(m + (0 * 4 + j) * plane), m1 = LOAD(m + (1 * 4 + j) * plane);
        vec m2 = LOAD(m + (2 * 4 + j) * plane), m3 = LOAD(m + (3 * 4 + j) * plane);
        s[0][j] = ADD(ADD(m0, m1), m2);
        s[1][j] = SUB(SUB(m1, m2), m3);
    }
    for (int i = 0; i < 2; i++) {
        y[i][0] = ADD(ADD(s[i][0], s[i][1]), s[i][2]);
        y[i][1] = SUB(SUB(s[i][1], s[i][2]), s[i][3]);
    }
}

// The epilogue (nnb_epilogue, in its order) on output pixel `pixel`'s filters f..f+WIDTH.
AVX2 static inline vec finish(vec v, const nnb_epilogue *post, long pixel, long f) {
#if WIDTH == 8
    if (post->bias) v = _mm256_add_ps(v, _mm256_loadu_ps(post->bias + f));
    if (post->scale) v = _mm256_add_ps(_mm256_mul_ps(v, _mm256_loadu_ps(post->scale + f)), _mm256_loadu_ps(post->shift + f));
    if (post->addend) v = _mm256_add_ps(v, _mm256_loadu_ps(post->addend + pixel * post->addend_stride + f));
    if (post->activation != NNB_ACTIVATION_LINEAR) v = _mm256_max_ps(_mm256_setzero_ps(), v);
    if (post->activation == NNB_ACTIVATION_RELU6) v = _mm256_min_ps(_mm256_set1_ps(6.0f), v);
    return v;
#else
    return nnb_epilogue_one(v, post, pixel, f);
#endif
}

// The larger of v and m, passing over v when it is NaN (maxps returns its second operand when
// either is NaN, and m is never NaN): the max pooling's rule (nnb_max_window).
AVX2 static inline vec max_passing_nan(vec v, vec m) {
#if WIDTH == 8
    return _mm256_max_ps(v, m);
#else
    return v > m ? v : m;
#endif
}

// The 2×2 outputs of tiles start..<start+tiles for filters f_begin..<f_end, after `post`, to y
// (or, with `pooled`, their max to the pooled pixel): tile t's products for filter f at
// m[ξ·m_plane + t·m_row + f − f_begin].
AVX2 static void store_tiles(const float *m, long m_plane, long m_row, long f_begin, long f_end,
                             long start, long tiles, long output_height, long output_width, long filters,
                             const nnb_epilogue *post, float *y, float *pooled, long pooled_height, long pooled_width) {
    long tiles_wide = (output_width + 1) / 2, per_image = (output_height + 1) / 2 * tiles_wide;
    long vector_end = f_begin + (f_end - f_begin) / WIDTH * WIDTH;
    for (long t = 0; t < tiles; t++) {
        long tile = start + t, image = tile / per_image, row = tile % per_image / tiles_wide, column = tile % tiles_wide;
        long rows = output_height - 2 * row < 2 ? 1 : 2, columns = output_width - 2 * column < 2 ? 1 : 2;
        long corner_pixel = (image * output_height + 2 * row) * output_width + 2 * column;
        // Pooled: a tile past the pooled output (the odd last row or column of a "valid"
        // pooling) has no window.
        if (pooled && (row >= pooled_height || column >= pooled_width)) continue;
        float *out = pooled ? pooled + ((image * pooled_height + row) * pooled_width + column) * filters
                            : y + corner_pixel * filters;
        const float *mt = m + t * m_row;
        long f = f_begin;
        for (; f < vector_end; f += WIDTH) {
            vec r[2][2];
            transform_output(mt + (f - f_begin), m_plane, r);
            if (pooled) {
                vec most = SET1(-INFINITY);
                for (long i = 0; i < rows; i++)
                    for (long j = 0; j < columns; j++)
                        most = max_passing_nan(finish(r[i][j], post, corner_pixel + i * output_width + j, f), most);
                STORE(out + f, most);
                continue;
            }
            for (long i = 0; i < rows; i++)
                for (long j = 0; j < columns; j++)
                    STORE(out + (i * output_width + j) * filters + f, finish(r[i][j], post, corner_pixel + i * output_width + j, f));
        }
        for (; f < f_end; f++) {
            float s[2][4], mm[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) mm[i][j] = mt[(i * 4 + j) * m_plane + f - f_begin];
            for (int j = 0; j < 4; j++) {
                s[0][j] = mm[0][j] + mm[1][j] + mm[2][j];
                s[1][j] = mm[1][j] - mm[2][j] - mm[3][j];
            }
            float most = -INFINITY;
            for (long i = 0; i < rows; i++)
                for (long j = 0; j < columns; j++) {
                    float value = j == 0 ? s[i][0] + s[i][1] + s[i][2] : s[i][1] - s[i][2] - s[i][3];
                    value = nnb_epilogue_one(value, post, corner_pixel + i * output_width + j, f);
                    if (pooled) most = value > most ? value : most;
                    else out[(i * output_width + j) * filters + f] = value;
                }
            if (pooled) out[f] = most;
        }
    }
}

// nnb_winograd_3x3, or with `pooled` (not NULL) nnb_winograd_3x3_pooled: each tile's 2×2
// outputs, after `post`, go to pooled pixel (tile row, tile column) as their max instead of to y.
AVX2 static void winograd(const float *x, long input_height, long input_width, long pad_top, long pad_left, long channels,
                          long output_height, long output_width, const float *packed, const float *taps, long filters,
                          long filter_first, long filter_count, const nnb_epilogue *post, float *y,
                          float *pooled, long pooled_height, long pooled_width, long first, long count) {
    long tiles_wide = (output_width + 1) / 2, per_image = (output_height + 1) / 2 * tiles_wide;
    long panel_plane = nnb_winograd_plane(channels, filters);
    long vector_channels = channels / WIDTH * WIDTH;
    long row_step = input_width * channels;
    const nnb_epilogue none = {0, 0, 0, 0, 0, NNB_ACTIVATION_LINEAR};
    if (!post) post = &none;
    // From taps, one panel's products at a time: the panel's U (16·C·16 floats, a cache line
    // between its matrices) transformed into L2 right before the 16 products that read it. Each
    // block transforms each of its filters' panels once, so a call's tiles go in one block up to
    // NNB_WINOGRAD_TAPS_BLOCK, past what the L2 rule allows at many channels (ResNet50's 14×14
    // layers: 49 tiles of 256 channels, 0.8 MB of transformed inputs).
    long block = taps ? (count < NNB_WINOGRAD_TAPS_BLOCK ? count : NNB_WINOGRAD_TAPS_BLOCK) : tiles_per_block(channels, filter_count);
    if (block < 1) block = 1;
    long m_columns = taps ? 16 : filter_count, u_plane = 16 * channels + 16;
    // The 16 planes of V and M lie a plane and a cache line apart: planes a multiple of 4 KB
    // apart (32 tiles of 32 channels) fell into the same L1 sets, and a block of 32 tiles ran 1.3
    // to 1.5 times as long as one of 30.
    void *blocks[4] = {NULL, NULL, NULL, NULL};
    float *v = line_aligned_floats(16 * (block * channels + 16), &blocks[0]);
    float *m = line_aligned_floats(16 * (block * m_columns + 16), &blocks[1]);
    float *u = taps ? line_aligned_floats(16 * u_plane, &blocks[2]) : NULL;
    // A tile whose 4×4 window reaches past the input is gathered here first, zeros outside.
    float *window = line_aligned_floats(16 * channels, &blocks[3]);
    if (!v || !m || (taps && !u) || !window) {
        for (int q = 0; q < 4; q++) free(blocks[q]);
        return;
    }
    for (long start = first; start < first + count; start += block) {
        long tiles = first + count - start < block ? first + count - start : block;
        long v_plane = tiles * channels + 16, m_plane = tiles * m_columns + 16;
        for (long t = 0; t < tiles; t++) {
            long tile = start + t, image = tile / per_image, row = tile % per_image / tiles_wide, column = tile % tiles_wide;
            long top = 2 * row - pad_top, left = 2 * column - pad_left, step = row_step;
            const float *corner = window;
            if (top >= 0 && left >= 0 && top + 4 <= input_height && left + 4 <= input_width) {
                corner = x + ((image * input_height + top) * input_width + left) * channels;
            } else {
                for (long i = 0; i < 4; i++)
                    for (long j = 0; j < 4; j++) {
                        float *cell = window + (i * 4 + j) * channels;
                        long r = top + i, q = left + j;
                        if (r >= 0 && r < input_height && q >= 0 && q < input_width)
                            memcpy(cell, x + ((image * input_height + r) * input_width + q) * channels, sizeof(float) * channels);
                        else
                            memset(cell, 0, sizeof(float) * channels);
                    }
                step = 4 * channels;
            }
            long c = 0;
            for (; c < vector_channels; c += WIDTH) transform_input(corner + c, step, channels, v + t * channels + c, v_plane);
            for (; c < channels; c++) {
                // The last channels one at a time, through the same arithmetic.
                float d[4][4], tmp[4][4];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) d[i][j] = corner[i * step + j * channels + c];
                for (int j = 0; j < 4; j++) {
                    tmp[0][j] = d[0][j] - d[2][j]; tmp[1][j] = d[1][j] + d[2][j];
                    tmp[2][j] = d[2][j] - d[1][j]; tmp[3][j] = d[1][j] - d[3][j];
                }
                for (int i = 0; i < 4; i++) {
                    float *out = v + t * channels + c + i * 4 * v_plane;
                    out[0] = tmp[i][0] - tmp[i][2]; out[v_plane] = tmp[i][1] + tmp[i][2];
                    out[2 * v_plane] = tmp[i][2] - tmp[i][1]; out[3 * v_plane] = tmp[i][1] - tmp[i][3];
                }
            }
        }
        if (taps) {
            for (long f = filter_first; f < filter_first + filter_count; f += 16) {
                long n = filter_first + filter_count - f < 16 ? filter_first + filter_count - f : 16;
                transform_panels(taps, channels, f / 16, f / 16 + 1, u, u_plane);
                for (long xi = 0; xi < 16; xi++)
                    nnb_sgemm_packed(v + xi * v_plane, channels, u + xi * u_plane, m + xi * m_plane, 16, tiles, n, channels, 0, 0, 0);
                store_tiles(m, m_plane, 16, f, f + n, start, tiles, output_height, output_width, filters, post, y,
                            pooled, pooled_height, pooled_width);
            }
            continue;
        }
        // The products for this call's filters only: their panels start filter_first·channels
        // floats into each of the 16 packed matrices.
        for (long xi = 0; xi < 16; xi++)
            nnb_sgemm_packed(v + xi * v_plane, channels, packed + xi * panel_plane + filter_first * channels, m + xi * m_plane,
                             filter_count, tiles, filter_count, channels, 0, 0, 0);
        store_tiles(m, m_plane, filter_count, filter_first, filter_first + filter_count, start, tiles,
                    output_height, output_width, filters, post, y, pooled, pooled_height, pooled_width);
    }
    for (int q = 0; q < 4; q++) free(blocks[q]);
}

void nnb_winograd_3x3(const float *x, long input_height, long input_width, long pad_top, long pad_left, long channels,
                      long output_height, long output_width, const float *packed, const float *taps, long filters,
                      long filter_first, long filter_count, const nnb_epilogue *post, float *y, long first, long count) {
    winograd(x, input_height, input_width, pad_top, pad_left, channels, output_height, output_width, packed, taps, filters, filter_first,
             filter_count, post, y, NULL, 0, 0, first, count);
}

void nnb_winograd_3x3_pooled(const float *x, long input_height, long input_width, long pad_top, long pad_left, long channels,
                             long output_height, long output_width, const float *packed, const float *taps, long filters,
                             long filter_first, long filter_count, const nnb_epilogue *post, float *pooled,
                             long pooled_height, long pooled_width, long first, long count) {
    winograd(x, input_height, input_width, pad_top, pad_left, channels, output_height, output_width, packed, taps, filters, filter_first,
             filter_count, post, NULL, pooled, pooled_height, pooled_width, first, count);
}
