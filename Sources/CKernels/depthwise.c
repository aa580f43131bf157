// Direct depthwise convolution, channels last: each output pixel's taps are accumulated in
// registers, vectorized over channels (8 per vector on AVX2, 16 on AVX-512), a group of 4 output
// pixels sharing each tap's weight load, with bias, a per-channel scale and shift (a
// BatchNormalization folded in) and the activation in the store. No padded
// copy: a pixel whose window reaches past the input's left or right edge is a group of one with
// only its in-bounds taps, and the rows out of bounds are left out for the whole output row.
// On AVX-512 a 3-wide window at stride 1 or 2 slides along the row instead (slide16): groups of
// up to 8 pixels, edge pixels included (their one column outside the input masked off). On the
// AMD EPYC (Zen 5) that took MobileNetV2's 14×14×576 layer from 27 to 18 µs and its 7×7×960 one
// from 17 to 8, where the edge pixels alone, one FMA chain each, had taken as long as the rest.
//
// Every output element is bias (or 0), then one FMA per in-bounds tap in (kernel row, kernel
// column) order, whatever the group, the channel block, the batch or the range of rows a call
// covers: a row's result is bit-identical in any batch.
#include "CKernels.h"

typedef struct problem {
    const float *x;
    long input_height, input_width, channels, multiplier, width;
    const float *kernel;
    long kernel_height, kernel_width, stride_height, stride_width, dilation_height, dilation_width;
    long pad_top, pad_left, output_height, output_width;
    const float *bias, *scale, *shift;
    int activation;
    float *y;
    // The sliding kernel for a group of 1 to 8 pixels of a row where the window slides
    // (slides_window, on AVX2 and AVX-512), else null: groups of 4 interior pixels and single edge pixels.
    void (*slide)(const struct problem *p, const float *x, long row, long column, int pixels, long r0, long r1,
                  int edges, float *out);
    // The output channels one sweep along a row covers (a multiple of the ISA's block of
    // vectors), and the sweep's range [channel_start, channel_end) that run_rows sets.
    long sweep_channels, channel_start, channel_end;
} problem;

// The taps t in [*lo, *hi) of a window of `size` taps, `dilation` apart, starting at input
// position `base`, that land inside 0..<length (a contiguous range, since the position grows with t).
static inline void valid_taps(long base, long dilation, long size, long length, long *lo, long *hi) {
    long first = base >= 0 ? 0 : (-base + dilation - 1) / dilation;
    long last = base >= length ? 0 : (length - base + dilation - 1) / dilation;
    if (last > size) last = size;
    if (last < first) last = first;
    *lo = first;
    *hi = last;
}

// One group of output pixels of output row `row` (image's input at x): `pixels` pixels from
// column `column`, kernel rows [r0, r1) and columns [q0, q1), the sweep's channels
// [p->channel_start, p->channel_end). Each ISA gives one.
typedef void (*group_fn)(const problem *p, const float *x, long row, long column, int pixels,
                         long r0, long r1, long q0, long q1, float *out);

// Output rows first..<first+count (flat over image and output row) with `group` (or p->slide).
// Along each row the channels go in sweeps of p->sweep_channels, each over every column (a narrower
// working set per sweep); a pixel's sum is the same whatever the sweep.
static void run_rows(problem *p, long first, long count, group_fn group) {
    long kw = p->kernel_width, sw = p->stride_width, dw = p->dilation_width;
    // Interior columns [inner_lo, inner_hi): every column tap lies inside the input.
    long inner_lo = (p->pad_left + sw - 1) / sw;
    long reach = p->input_width - 1 - (kw - 1) * dw + p->pad_left;
    long inner_hi = reach < 0 ? 0 : reach / sw + 1;
    if (inner_hi > p->output_width) inner_hi = p->output_width;
    long sweep = p->sweep_channels > 0 ? p->sweep_channels : p->width;
    for (long index = first; index < first + count; index++) {
        long image = index / p->output_height, row = index % p->output_height;
        const float *x = p->x + image * p->input_height * p->input_width * p->channels;
        float *out = p->y + index * p->output_width * p->width;
        long r0, r1;
        valid_taps(row * p->stride_height - p->pad_top, p->dilation_height, p->kernel_height, p->input_height, &r0, &r1);
        for (long start = 0; start < p->width; start += sweep) {
            p->channel_start = start;
            p->channel_end = p->width - start > sweep ? start + sweep : p->width;
            long column = 0;
            while (column < p->output_width) {
                if (p->slide) {
                    // Groups of at most 8, as even as the row's remaining pixels allow (14: 7 + 7),
                    // when at most the window's first and last input columns lie outside the input.
                    long left = p->output_width - column, groups = (left + 7) / 8, pixels = (left + groups - 1) / groups;
                    long base = column * sw - p->pad_left, end = base + (pixels - 1) * sw + kw - 1;
                    if (base >= -1 && end <= p->input_width) {
                        p->slide(p, x, row, column, (int)pixels, r0, r1, (base < 0) | (end == p->input_width) << 1,
                                 out + column * p->width);
                        column += pixels;
                        continue;
                    }
                } else if (column >= inner_lo && column + 4 <= inner_hi) {
                    group(p, x, row, column, 4, r0, r1, 0, kw, out + column * p->width);
                    column += 4;
                    continue;
                }
                long q0, q1;
                valid_taps(column * sw - p->pad_left, dw, kw, p->input_width, &q0, &q1);
                group(p, x, row, column, 1, r0, r1, q0, q1, out + column * p->width);
                column += 1;
            }
        }
    }
}

// The portable group: the same order, a multiply then an add (this path runs where no FMA is).
static void group_scalar(const problem *p, const float *x, long row, long column, int pixels,
                         long r0, long r1, long q0, long q1, float *out) {
    long width = p->width, m = p->multiplier, c = p->channels;
    for (int pixel = 0; pixel < pixels; pixel++) {
        long base = (column + pixel) * p->stride_width - p->pad_left;
        for (long j = p->channel_start; j < p->channel_end; j++) {
            float sum = p->bias ? p->bias[j] : 0.0f;
            for (long r = r0; r < r1; r++) {
                const float *line = x + (row * p->stride_height - p->pad_top + r * p->dilation_height) * p->input_width * c;
                for (long q = q0; q < q1; q++) {
                    float product = line[(base + q * p->dilation_width) * c + j / m] * p->kernel[(r * p->kernel_width + q) * width + j];
                    sum = sum + product;
                }
            }
            if (p->scale) sum = sum * p->scale[j] + p->shift[j];
            if (p->activation >= NNB_ACTIVATION_RELU) sum = sum > 0.0f ? sum : (sum == sum ? 0.0f : sum);
            if (p->activation == NNB_ACTIVATION_RELU6) sum = sum < 6.0f ? sum : (sum == sum ? 6.0f : sum);
            out[pixel * width + j] = sum;
        }
    }
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("clang loop unroll(full)")

// ---- AVX2 + FMA: 8 channels a vector.

// The input vector for output channels j..j+7 at a pixel: the pixel's channels j..j+7, or with a
// depth multiplier m channel (j + l) / m in lane l (a gather), lanes past `mask` zero.
AVX2 INLINE __m256 load8(const float *pixel, long j, int unit, __m256i lanes, int masked, __m256i mask) {
    if (unit) return masked ? _mm256_maskload_ps(pixel + j, mask) : _mm256_loadu_ps(pixel + j);
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), pixel, lanes, _mm256_castsi256_ps(mask), 4);
}

// (start + l) / m in lane l: the input channel of output channel start + l (a gather's indices;
// a layer's channels fit an int, as the element-count limit keeps every tensor far smaller).
AVX2 static __m256i input_lanes8(long start, long m) {
    int lanes[8];
    for (int l = 0; l < 8; l++) lanes[l] = (int)((start + l) / m);
    return _mm256_loadu_si256((const __m256i *)lanes);
}

AVX2 INLINE __m256 finish8(__m256 v, int activation) {
    // max/min return their second operand when either is NaN: v goes second, so NaN stays.
    if (activation >= NNB_ACTIVATION_RELU) v = _mm256_max_ps(_mm256_setzero_ps(), v);
    if (activation == NNB_ACTIVATION_RELU6) v = _mm256_min_ps(_mm256_set1_ps(6.0f), v);
    return v;
}

// PIXELS pixels × VECTORS vectors of channels from j (the last vector masked when masked).
AVX2 INLINE void block8(const problem *p, const float *x, long row, long column, const int pixels, const int vectors,
                        long r0, long r1, long q0, long q1, long j, int masked, __m256i mask, const int unit, float *out) {
    long width = p->width, m = p->multiplier, c = p->channels;
    __m256 acc[4][2];
    __m256i lanes[2], masks[2];
    for (int v = 0; v < vectors; v++) {
        int last = masked && v == vectors - 1;
        masks[v] = last ? mask : _mm256_set1_epi32(-1);
        long start = j + 8 * v;
        lanes[v] = unit ? _mm256_setzero_si256() : input_lanes8(start, m);
        __m256 b = p->bias ? (last ? _mm256_maskload_ps(p->bias + start, mask) : _mm256_loadu_ps(p->bias + start)) : _mm256_setzero_ps();
        for (int q = 0; q < pixels; q++) acc[q][v] = b;
    }
    long step = p->stride_width * c, tap_step = p->dilation_width * c;
    for (long r = r0; r < r1; r++) {
        const float *line = x + ((row * p->stride_height - p->pad_top + r * p->dilation_height) * p->input_width
                                 + column * p->stride_width - p->pad_left) * c;
        const float *weights = p->kernel + r * p->kernel_width * width + j;
        for (long q = q0; q < q1; q++) {
            const float *at = line + q * tap_step;
            for (int v = 0; v < vectors; v++) {
                int last = masked && v == vectors - 1;
                __m256 w = last ? _mm256_maskload_ps(weights + q * width + 8 * v, mask) : _mm256_loadu_ps(weights + q * width + 8 * v);
                for (int pixel = 0; pixel < pixels; pixel++)
                    acc[pixel][v] = _mm256_fmadd_ps(load8(at + pixel * step, j + 8 * v, unit, lanes[v], last, masks[v]), w, acc[pixel][v]);
            }
        }
    }
    __m256 scale[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, shift[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int v = 0; v < vectors && p->scale; v++) {
        int last = masked && v == vectors - 1;
        scale[v] = last ? _mm256_maskload_ps(p->scale + j + 8 * v, mask) : _mm256_loadu_ps(p->scale + j + 8 * v);
        shift[v] = last ? _mm256_maskload_ps(p->shift + j + 8 * v, mask) : _mm256_loadu_ps(p->shift + j + 8 * v);
    }
    for (int pixel = 0; pixel < pixels; pixel++)
        for (int v = 0; v < vectors; v++) {
            __m256 value = acc[pixel][v];
            if (p->scale) value = _mm256_fmadd_ps(value, scale[v], shift[v]);
            value = finish8(value, p->activation);
            float *to = out + pixel * width + j + 8 * v;
            if (masked && v == vectors - 1) _mm256_maskstore_ps(to, mask, value);
            else _mm256_storeu_ps(to, value);
        }
}

// Every block of a group; unit (multiplier 1: plain loads, no gather) is a constant in each copy.
AVX2 INLINE void group8(const problem *p, const float *x, long row, long column, int pixels,
                        long r0, long r1, long q0, long q1, const int unit, float *out) {
    long width = p->channel_end, j = p->channel_start;
    __m256i none = _mm256_setzero_si256();
    if (pixels == 4) {
        for (; j + 16 <= width; j += 16) block8(p, x, row, column, 4, 2, r0, r1, q0, q1, j, 0, none, unit, out);
        for (; j + 8 <= width; j += 8) block8(p, x, row, column, 4, 1, r0, r1, q0, q1, j, 0, none, unit, out);
    } else {
        for (; j + 16 <= width; j += 16) block8(p, x, row, column, 1, 2, r0, r1, q0, q1, j, 0, none, unit, out);
        for (; j + 8 <= width; j += 8) block8(p, x, row, column, 1, 1, r0, r1, q0, q1, j, 0, none, unit, out);
    }
    if (j < width) {
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(width - j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        if (pixels == 4) block8(p, x, row, column, 4, 1, r0, r1, q0, q1, j, 1, mask, unit, out);
        else block8(p, x, row, column, 1, 1, r0, r1, q0, q1, j, 1, mask, unit, out);
    }
}

// PIXELS pixels of one output row × 8 channels from j (lanes past `mask` zero, not stored), for
// a 3-wide window at stride STRIDE, as slide16 below: each input vector loaded once along a kernel
// row and fed to every pixel whose window covers it. A group's first or last input column outside
// the input (edges bit 0, bit 1) is neither loaded nor multiplied: it is outside for every lane,
// so each sum keeps exactly its in-bounds taps, in (kernel row, kernel column) order, and the
// result is block8's, bit for bit. 8 accumulators, 3 weights and an input: 12 of 16 registers.
AVX2 INLINE void slide8(const problem *p, const float *x, long row, long column, const int PIXELS, const int STRIDE,
                        long r0, long r1, long j, int masked, __m256i mask, int edges, float *out) {
    long width = p->width;
    const int SPAN = (PIXELS - 1) * STRIDE + 3;
    __m256 acc[8];
    __m256 b = p->bias ? (masked ? _mm256_maskload_ps(p->bias + j, mask) : _mm256_loadu_ps(p->bias + j)) : _mm256_setzero_ps();
    UNROLL for (int q = 0; q < PIXELS; q++) acc[q] = b;
    long offset = (column * STRIDE - p->pad_left) * width + j;
    for (long r = r0; r < r1; r++) {
        const char *line = (const char *)(x + (row * p->stride_height - p->pad_top + r * p->dilation_height) * p->input_width * width)
                           + offset * (long)sizeof(float);
        const float *weights = p->kernel + r * 3 * width + j;
        __m256 w[3];
        UNROLL for (int q = 0; q < 3; q++) w[q] = masked ? _mm256_maskload_ps(weights + q * width, mask) : _mm256_loadu_ps(weights + q * width);
        UNROLL for (int i = 0; i < SPAN; i++) {
            if ((i == 0 && (edges & 1)) || (i == SPAN - 1 && (edges & 2))) continue;
            const float *at = (const float *)(line + i * width * (long)sizeof(float));
            __m256 in = masked ? _mm256_maskload_ps(at, mask) : _mm256_loadu_ps(at);
            UNROLL for (int pixel = 0; pixel < PIXELS; pixel++) {
                int q = i - pixel * STRIDE;
                if (q >= 0 && q < 3) acc[pixel] = _mm256_fmadd_ps(in, w[q], acc[pixel]);
            }
        }
    }
    __m256 scale = _mm256_setzero_ps(), shift = _mm256_setzero_ps();
    if (p->scale) {
        scale = masked ? _mm256_maskload_ps(p->scale + j, mask) : _mm256_loadu_ps(p->scale + j);
        shift = masked ? _mm256_maskload_ps(p->shift + j, mask) : _mm256_loadu_ps(p->shift + j);
    }
    UNROLL for (int pixel = 0; pixel < PIXELS; pixel++) {
        __m256 value = acc[pixel];
        if (p->scale) value = _mm256_fmadd_ps(value, scale, shift);
        value = finish8(value, p->activation);
        float *to = out + pixel * width + j;
        if (masked) _mm256_maskstore_ps(to, mask, value);
        else _mm256_storeu_ps(to, value);
    }
}

// A switch on the group's pixel count (1 to 8) running BLOCKS(P, STRIDE), the sliding kernel
// made for exactly P pixels, each case ending in a break: the AVX2 group's (the AVX-512 blocks,
// with twice the accumulators, are functions of their own, below).
#define SLIDE_PIXEL_CASES(BLOCKS, STRIDE) \
    switch (pixels) {                     \
    case 1: BLOCKS(1, STRIDE)             \
    case 2: BLOCKS(2, STRIDE)             \
    case 3: BLOCKS(3, STRIDE)             \
    case 4: BLOCKS(4, STRIDE)             \
    case 5: BLOCKS(5, STRIDE)             \
    case 6: BLOCKS(6, STRIDE)             \
    case 7: BLOCKS(7, STRIDE)             \
    default: BLOCKS(8, STRIDE)            \
    }

#define SLIDE8_BLOCKS(PIXELS, STRIDE)                                                                                \
    for (; j + 8 <= width; j += 8) slide8(p, x, row, column, PIXELS, STRIDE, r0, r1, j, 0, none, edges, out);        \
    if (j < width) {                                                                                                 \
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(width - j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); \
        slide8(p, x, row, column, PIXELS, STRIDE, r0, r1, j, 1, mask, edges, out);                                  \
    }                                                                                                                \
    break;
AVX2 static void slide_group8(const struct problem *p, const float *x, long row, long column, int pixels, long r0, long r1,
                              int edges, float *out) {
    long width = p->channel_end, j = p->channel_start;
    __m256i none = _mm256_setzero_si256();
    SLIDE_PIXEL_CASES(SLIDE8_BLOCKS, 1)
}
#undef SLIDE8_BLOCKS

// ---- AVX-512: 16 channels a vector, the tail by a lane mask.

AVX512 INLINE __m512 load16(const float *pixel, long j, int unit, __m512i lanes, __mmask16 mask) {
    if (unit) return _mm512_maskz_loadu_ps(mask, pixel + j);
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, lanes, pixel, 4);
}

AVX512 static __m512i input_lanes16(long start, long m) {
    int lanes[16];
    for (int l = 0; l < 16; l++) lanes[l] = (int)((start + l) / m);
    return _mm512_loadu_si512((const void *)lanes);
}

AVX512 INLINE __m512 finish16(__m512 v, int activation) {
    if (activation >= NNB_ACTIVATION_RELU) v = _mm512_max_ps(_mm512_setzero_ps(), v);
    if (activation == NNB_ACTIVATION_RELU6) v = _mm512_min_ps(_mm512_set1_ps(6.0f), v);
    return v;
}

// The store of a block of `pixels` pixels × `vectors` vectors of channels from j (the last vector
// masked by masks[vectors − 1]): the folded scale and shift, then the activation.
AVX512 INLINE void store16(const problem *p, __m512 (*acc)[2], const int pixels, const int vectors, long j,
                           const __mmask16 masks[2], float *out) {
    long width = p->width;
    __m512 scale[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()}, shift[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    if (p->scale)
        UNROLL for (int v = 0; v < vectors; v++) {
            scale[v] = _mm512_maskz_loadu_ps(masks[v], p->scale + j + 16 * v);
            shift[v] = _mm512_maskz_loadu_ps(masks[v], p->shift + j + 16 * v);
        }
    UNROLL for (int pixel = 0; pixel < pixels; pixel++)
        UNROLL for (int v = 0; v < vectors; v++) {
            __m512 value = acc[pixel][v];
            if (p->scale) value = _mm512_fmadd_ps(value, scale[v], shift[v]);
            _mm512_mask_storeu_ps(out + pixel * width + j + 16 * v, masks[v], finish16(value, p->activation));
        }
}

AVX512 INLINE void block16(const problem *p, const float *x, long row, long column, const int pixels, const int vectors,
                           long r0, long r1, long q0, long q1, long j, __mmask16 tail, const int unit, float *out) {
    long width = p->width, m = p->multiplier, c = p->channels;
    __m512 acc[4][2];
    __m512i lanes[2];
    __mmask16 masks[2];
    for (int v = 0; v < vectors; v++) {
        masks[v] = v == vectors - 1 ? tail : (__mmask16)0xFFFF;
        long start = j + 16 * v;
        lanes[v] = unit ? _mm512_setzero_si512() : input_lanes16(start, m);
        __m512 b = p->bias ? _mm512_maskz_loadu_ps(masks[v], p->bias + start) : _mm512_setzero_ps();
        for (int q = 0; q < pixels; q++) acc[q][v] = b;
    }
    long step = p->stride_width * c, tap_step = p->dilation_width * c;
    for (long r = r0; r < r1; r++) {
        const float *line = x + ((row * p->stride_height - p->pad_top + r * p->dilation_height) * p->input_width
                                 + column * p->stride_width - p->pad_left) * c;
        const float *weights = p->kernel + r * p->kernel_width * width + j;
        for (long q = q0; q < q1; q++) {
            const float *at = line + q * tap_step;
            for (int v = 0; v < vectors; v++) {
                __m512 w = _mm512_maskz_loadu_ps(masks[v], weights + q * width + 16 * v);
                for (int pixel = 0; pixel < pixels; pixel++)
                    acc[pixel][v] = _mm512_fmadd_ps(load16(at + pixel * step, j + 16 * v, unit, lanes[v], masks[v]), w, acc[pixel][v]);
            }
        }
    }
    store16(p, acc, pixels, vectors, j, masks, out);
}

// PIXELS pixels of one output row × VECTORS vectors of channels from j, for a 3-wide window at
// stride STRIDE without dilation or depth multiplier: along each kernel row the window slides, so
// each input vector is loaded once and feeds every pixel whose window covers it (its tap
// q = i − pixel·STRIDE), where block16 loads it once per tap. The group's first or last input
// column may lie outside the input (edges bit 0, bit 1: a row's edge pixels under padding): that
// column's load and its multiply-adds are masked off, so each sum keeps exactly its in-bounds taps
// and takes them in (kernel row, kernel column) order: the same bits as a pixel summed alone.
AVX512 INLINE void slide16(const problem *p, const float *x, long row, long column, const int PIXELS, const int VECTORS,
                           const int STRIDE, long r0, long r1, long j, __mmask16 tail, int edges, float *out) {
    long width = p->width;
    const int SPAN = (PIXELS - 1) * STRIDE + 3;
    __m512 acc[8][2];
    __mmask16 masks[2], first[2], last[2];
    UNROLL for (int v = 0; v < VECTORS; v++) {
        masks[v] = v == VECTORS - 1 ? tail : (__mmask16)0xFFFF;
        first[v] = edges & 1 ? 0 : masks[v];
        last[v] = edges & 2 ? 0 : masks[v];
        __m512 b = p->bias ? _mm512_maskz_loadu_ps(masks[v], p->bias + j + 16 * v) : _mm512_setzero_ps();
        UNROLL for (int q = 0; q < PIXELS; q++) acc[q][v] = b;
    }
    // The first input column's offset from the row's start, in floats: −width when it lies left
    // of the input (then only masked-off loads touch it); integer arithmetic, never a pointer
    // before the buffer.
    long offset = (column * STRIDE - p->pad_left) * width + j;
    for (long r = r0; r < r1; r++) {
        const char *line = (const char *)(x + (row * p->stride_height - p->pad_top + r * p->dilation_height) * p->input_width * width)
                           + offset * (long)sizeof(float);
        const float *weights = p->kernel + r * 3 * width + j;
        __m512 w[3][2];
        UNROLL for (int q = 0; q < 3; q++)
            UNROLL for (int v = 0; v < VECTORS; v++) w[q][v] = _mm512_maskz_loadu_ps(masks[v], weights + q * width + 16 * v);
        UNROLL for (int i = 0; i < SPAN; i++) {
            UNROLL for (int v = 0; v < VECTORS; v++) {
                const int edge = i == 0 || i == SPAN - 1;
                __mmask16 k = i == 0 ? first[v] : i == SPAN - 1 ? last[v] : masks[v];
                __m512 in = _mm512_maskz_loadu_ps(k, line + (i * width + 16 * v) * (long)sizeof(float));
                UNROLL for (int pixel = 0; pixel < PIXELS; pixel++) {
                    int q = i - pixel * STRIDE;
                    if (q >= 0 && q < 3)
                        acc[pixel][v] = edge ? _mm512_mask3_fmadd_ps(in, w[q][v], acc[pixel][v], k)
                                             : _mm512_fmadd_ps(in, w[q][v], acc[pixel][v]);
                }
            }
        }
    }
    store16(p, acc, PIXELS, VECTORS, j, masks, out);
}

// Whether a sliding kernel (slide16; slide8 at stride 1) can take this problem's rows: a 3-wide
// window, undilated, at stride 1 or 2, one output channel per input channel.
static int slides_window(const problem *p) {
    return p->multiplier == 1 && p->kernel_width == 3 && p->dilation_width == 1 && (p->stride_width == 1 || p->stride_width == 2);
}

// The slide16 blocks of a group of exactly PIXELS pixels at stride STRIDE, the sweep's channels,
// as a function of its own: compiled alone, each block's accumulators stay in registers (with all
// sixteen inlined into one switch, the register allocator spilled around them: 265 spills in that
// function, and the 112×112 and 56×56 layers ran 12-15% slower).
#define NNB_SLIDE16(PIXELS, STRIDE)                                                                              \
    AVX512 __attribute__((noinline)) static void slide16_##PIXELS##_##STRIDE(const struct problem *p, const float *x, \
                                                                            long row, long column, long r0, long r1, \
                                                                            int edges, float *out) {             \
        long width = p->channel_end, j = p->channel_start;                                                       \
        for (; j + 32 <= width; j += 32) slide16(p, x, row, column, PIXELS, 2, STRIDE, r0, r1, j, 0xFFFF, edges, out); \
        for (; j < width; j += 16) {                                                                             \
            __mmask16 tail = width - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (width - j)) - 1);         \
            slide16(p, x, row, column, PIXELS, 1, STRIDE, r0, r1, j, tail, edges, out);                          \
        }                                                                                                        \
    }
#define NNB_SLIDE16_STRIDES(PIXELS) NNB_SLIDE16(PIXELS, 1) NNB_SLIDE16(PIXELS, 2)
NNB_SLIDE16_STRIDES(1) NNB_SLIDE16_STRIDES(2) NNB_SLIDE16_STRIDES(3) NNB_SLIDE16_STRIDES(4)
NNB_SLIDE16_STRIDES(5) NNB_SLIDE16_STRIDES(6) NNB_SLIDE16_STRIDES(7) NNB_SLIDE16_STRIDES(8)
#undef NNB_SLIDE16_STRIDES
#undef NNB_SLIDE16

typedef void (*slide16_function)(const struct problem *p, const float *x, long row, long column, long r0, long r1,
                                 int edges, float *out);

AVX512 static void slide_group16(const struct problem *p, const float *x, long row, long column, int pixels, long r0, long r1,
                                 int edges, float *out) {
#define NNB_PAIR(P) {slide16_##P##_1, slide16_##P##_2}
    static const slide16_function blocks[8][2] = {
        NNB_PAIR(1), NNB_PAIR(2), NNB_PAIR(3), NNB_PAIR(4), NNB_PAIR(5), NNB_PAIR(6), NNB_PAIR(7), NNB_PAIR(8),
    };
#undef NNB_PAIR
    // (1 to 8 pixels, as run_rows makes the groups.)
    int group = pixels < 1 ? 1 : pixels > 8 ? 8 : pixels;
    blocks[group - 1][p->stride_width == 1 ? 0 : 1](p, x, row, column, r0, r1, edges, out);
}
#undef SLIDE_PIXEL_CASES

AVX512 INLINE void group16(const problem *p, const float *x, long row, long column, int pixels,
                           long r0, long r1, long q0, long q1, const int unit, float *out) {
    long width = p->channel_end, j = p->channel_start;
    if (pixels == 4) {
        for (; j + 32 <= width; j += 32) block16(p, x, row, column, 4, 2, r0, r1, q0, q1, j, 0xFFFF, unit, out);
    } else {
        for (; j + 32 <= width; j += 32) block16(p, x, row, column, 1, 2, r0, r1, q0, q1, j, 0xFFFF, unit, out);
    }
    for (; j < width; j += 16) {
        __mmask16 tail = width - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (width - j)) - 1);
        if (pixels == 4) block16(p, x, row, column, 4, 1, r0, r1, q0, q1, j, tail, unit, out);
        else block16(p, x, row, column, 1, 1, r0, r1, q0, q1, j, tail, unit, out);
    }
}

AVX2 static void group_avx2(const problem *p, const float *x, long row, long column, int pixels,
                            long r0, long r1, long q0, long q1, float *out) {
    if (p->multiplier == 1) group8(p, x, row, column, pixels, r0, r1, q0, q1, 1, out);
    else group8(p, x, row, column, pixels, r0, r1, q0, q1, 0, out);
}

AVX512 static void group_avx512(const problem *p, const float *x, long row, long column, int pixels,
                                long r0, long r1, long q0, long q1, float *out) {
    if (p->multiplier == 1) group16(p, x, row, column, pixels, r0, r1, q0, q1, 1, out);
    else group16(p, x, row, column, pixels, r0, r1, q0, q1, 0, out);
}

static group_fn group_for(problem *p, int level) {
    if (level > nnb_cpu_kernel_level()) level = nnb_cpu_kernel_level();
    // (AVX2 slides at stride 1 only: at stride 2 its 4-pixel blocks of two vectors ran 10%
    // faster than slide8, 56×56×144 in 40 against 45 µs on the AMD EPYC.)
    if (slides_window(p) && level >= NNB_KERNELS_AVX512) p->slide = slide_group16;
    else if (slides_window(p) && level >= NNB_KERNELS_AVX2 && p->stride_width == 1) p->slide = slide_group8;
    // Sweeps of at most 192 channels, even and in whole blocks of 32: on the AMD EPYC (Zen 5)
    // 14×14×576 ran in 17 µs against 21 in one sweep; 28×28×192 and 56×56×144 in one sweep
    // (192, 144) ran as fast as in any split; the AVX2 path (4-pixel groups) gains as much.
    long sweeps = (p->width + 191) / 192;
    p->sweep_channels = level >= NNB_KERNELS_AVX2 ? ((p->width + sweeps - 1) / sweeps + 31) / 32 * 32 : 0;
    return level >= NNB_KERNELS_AVX512 ? group_avx512 : level >= NNB_KERNELS_AVX2 ? group_avx2 : group_scalar;
}

#else

static group_fn group_for(problem *p, int level) { (void)p; (void)level; return group_scalar; }

#endif

void nnb_depthwise(const float *x, long input_height, long input_width, long channels, long multiplier,
                   const float *kernel, long kernel_height, long kernel_width,
                   long stride_height, long stride_width, long dilation_height, long dilation_width,
                   long pad_top, long pad_left, long output_height, long output_width,
                   const float *bias, const float *scale, const float *shift, int activation,
                   float *y, long first, long count, int level) {
    if (count <= 0 || output_height <= 0 || output_width <= 0 || channels <= 0 || multiplier <= 0) return;
    problem p = {x, input_height, input_width, channels, multiplier, channels * multiplier,
                 kernel, kernel_height, kernel_width, stride_height, stride_width, dilation_height, dilation_width,
                 pad_top, pad_left, output_height, output_width,
                 bias, scale && shift ? scale : 0, scale && shift ? shift : 0, activation, y, 0, 0, 0, 0};
    group_fn group = group_for(&p, level);
    run_rows(&p, first, count, group);
}
