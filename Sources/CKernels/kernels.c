// AVX2 + FMA kernels, compiled per function (target attribute) and chosen at run time.
#include "CKernels.h"
#include "gemm_avx512.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// The kernel level every kernel dispatches on: the CPU's best, lowered by NNBUILD_KERNELS
// (baseline, avx2 or avx512; an unknown value or a level the CPU lacks leaves the CPU's best, and
// the command line refuses both before any kernel runs). Read once; a racing first read computes
// the same value. Only nnb_force_kernel_level (tests) changes it after that.
static volatile int kernel_level = -1;

int nnb_kernel_level(void) {
    int known = kernel_level;
    if (known >= 0) return known;
    int best = nnb_cpu_kernel_level(), chosen = best;
    const char *forced = getenv("NNBUILD_KERNELS");
    if (forced) {
        int wanted = strcmp(forced, "baseline") == 0 ? NNB_KERNELS_BASELINE
                   : strcmp(forced, "avx2") == 0 ? NNB_KERNELS_AVX2
                   : strcmp(forced, "avx512") == 0 ? NNB_KERNELS_AVX512 : -1;
        if (wanted >= 0 && wanted <= best) chosen = wanted;
    }
    kernel_level = chosen;
    return chosen;
}

int nnb_force_kernel_level(int level) {
    if (level >= NNB_KERNELS_BASELINE && level <= nnb_cpu_kernel_level()) kernel_level = level;
    return nnb_kernel_level();
}

long nnb_packed_k_chunk(long n, long k) {
    // Panel slices of at most this many bytes stay in L2 (1 MB or more per core on the CPUs
    // measured) beside the rows of a and c. Below twice that, one chunk: the product as it was.
#ifndef NNB_PACKED_CHUNK_BYTES
#define NNB_PACKED_CHUNK_BYTES (512L << 10)
#endif
    long row_bytes = (n + 15) / 16 * 16 * (long)sizeof(float);
    long chunk = NNB_PACKED_CHUNK_BYTES / row_bytes;
    if (chunk < 256) chunk = 256;
    return k < 2 * chunk ? (k > 0 ? k : 1) : chunk;
}

// The portable product, on every CPU: each c[i][j] is c's old value (or 0) plus a[i][p]·b[p][j]
// for p = 0, 1, ... in turn, a rounded multiply then a rounded add (never contracted into an
// FMA, which a CPU without one would emulate), whatever m is or which rows a call covers. A block
// of 4 rows × 8 columns stays in registers while p runs (the compiler vectorizes the 8 columns
// without changing any element's order); a narrower last block takes the same steps.
#pragma clang fp contract(off)
static inline void portable_block(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                                  long rows, long width, long k, int accumulate) {
    float sums[4][8] = {{0}};
    for (long r = 0; r < rows; r++)
        for (long q = 0; q < width; q++) sums[r][q] = accumulate ? c[r * ldc + q] : 0.0f;
    const float *a0 = a, *a1 = a + (rows > 1 ? lda : 0), *a2 = a + (rows > 2 ? 2 * lda : 0), *a3 = a + (rows > 3 ? 3 * lda : 0);
    if (width == 8) {
        for (long p = 0; p < k; p++) {
            const float *row = b + p * ldb;
            float x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
            for (long q = 0; q < 8; q++) {
                float w = row[q];
                sums[0][q] = sums[0][q] + x0 * w;
                sums[1][q] = sums[1][q] + x1 * w;
                sums[2][q] = sums[2][q] + x2 * w;
                sums[3][q] = sums[3][q] + x3 * w;
            }
        }
    } else {
        for (long p = 0; p < k; p++) {
            const float *row = b + p * ldb;
            float x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
            for (long q = 0; q < width; q++) {
                float w = row[q];
                sums[0][q] = sums[0][q] + x0 * w;
                sums[1][q] = sums[1][q] + x1 * w;
                sums[2][q] = sums[2][q] + x2 * w;
                sums[3][q] = sums[3][q] + x3 * w;
            }
        }
    }
    // Rows past `rows` read row 0 again and are never stored.
    for (long r = 0; r < rows; r++)
        for (long q = 0; q < width; q++) c[r * ldc + q] = sums[r][q];
}

void nnb_sgemm_portable(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                        long m, long n, long k, int accumulate) {
    for (long i = 0; i < m; i += 4) {
        long rows = m - i < 4 ? m - i : 4;
        for (long j = 0; j < n; j += 8)
            portable_block(a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, rows, n - j < 8 ? n - j : 8, k, accumulate);
    }
}
#pragma clang fp contract(on)

// One output row of a max pooling: window j starts column_offsets[j] floats past `row` and spans
// column_counts[j] cells of `channels` floats (nnb_max_window on each, on this machine's path).
void nnb_max_pool_row(const float *row, long rows, long row_step, const long *column_offsets, const long *column_counts,
                      long out_columns, long channels, float *out) {
    for (long j = 0; j < out_columns; j++)
        nnb_max_window(row + column_offsets[j], rows, row_step, column_counts[j], channels, channels, out + j * channels);
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

int nnb_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int nnb_cpu_kernel_level(void) {
    __builtin_cpu_init();
    if (!nnb_has_avx2_fma()) return NNB_KERNELS_BASELINE;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) return NNB_KERNELS_AVX512;
    return NNB_KERNELS_AVX2;
}

// Whether one row's product takes 16-lane chains (nnb_row_times_panels_avx512) on the AVX-512
// path. On the Intel Xeon (family 6, model 207), with the panels on 64-byte lines, they were 1.45×
// as fast as the AVX2 row on a 64×256 recurrent step from L2 (0.64 against 0.98 µs) and 1.4× on
// 128×384 (2.1 against 3.0). On the AMD EPYC (Zen 5) they were measured a fifth slower on the
// 64×256 step and level on cnn_cifar's Dense 6272×256, but then the panels were not aligned,
// and every 64-byte load straddled two lines: to be measured again there; until then Intel only.
int nnb_rows_in_16_lanes(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_is("intel") ? 1 : 0;
    }
    return known;
}

#define AVX2 __attribute__((target("avx2,fma")))


// 16 floats from p as two vectors, zeros past `width` (only `width` are read) or for a NULL p.
AVX2 static inline __attribute__((always_inline)) void load16(const float *p, long width, __m256 out[2]) {
    if (!p) {
        out[0] = out[1] = _mm256_setzero_ps();
    } else if (width == 16) {
        out[0] = _mm256_loadu_ps(p);
        out[1] = _mm256_loadu_ps(p + 8);
    } else {
        float lanes[16] = {0};
        for (long q = 0; q < width; q++) lanes[q] = p[q];
        out[0] = _mm256_loadu_ps(lanes);
        out[1] = _mm256_loadu_ps(lanes + 8);
    }
}

// The one register-blocked core of every GEMM kernel: c[rows × width] (+)= a[rows × k] · b[k × 16],
// where a's rows start at a[0..4] and lie as `layout` says, and consecutive rows of b lie ldb floats
// apart (the matrix's row length, or 16 in a packed panel). rows is 1...5 and width 1...16. The ten
// accumulators are named variables so that they stay in registers: held in an array indexed by a
// run-time row count they lived on the stack (half OpenBLAS's speed), and a sixth row spilled one of
// them. Rows past `rows` read row 0 again and are computed but never stored. Then `post` (NULL:
// nothing; see nnb_epilogue), at the block's first row and column.
AVX2 static inline __attribute__((always_inline)) void tile(const float *const a[5], runs layout, const float *b, long ldb, float *c, long ldc,
                             long rows, long width, int accumulate, const nnb_epilogue *post, long prefetch) {
    float *r[5] = {c, c + (rows > 1 ? ldc : 0), c + (rows > 2 ? 2 * ldc : 0), c + (rows > 3 ? 3 * ldc : 0), c + (rows > 4 ? 4 * ldc : 0)};
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41;
    if (accumulate && width == 16) {
        c00 = _mm256_loadu_ps(r[0]); c01 = _mm256_loadu_ps(r[0] + 8); c10 = _mm256_loadu_ps(r[1]); c11 = _mm256_loadu_ps(r[1] + 8);
        c20 = _mm256_loadu_ps(r[2]); c21 = _mm256_loadu_ps(r[2] + 8); c30 = _mm256_loadu_ps(r[3]); c31 = _mm256_loadu_ps(r[3] + 8);
        c40 = _mm256_loadu_ps(r[4]); c41 = _mm256_loadu_ps(r[4] + 8);
    } else if (accumulate) {
        // A partial panel: read only the row's first `width` columns.
        float lanes[5][16] = {{0}};
        for (long row = 0; row < 5; row++) for (long q = 0; q < width; q++) lanes[row][q] = r[row][q];
        c00 = _mm256_loadu_ps(lanes[0]); c01 = _mm256_loadu_ps(lanes[0] + 8); c10 = _mm256_loadu_ps(lanes[1]); c11 = _mm256_loadu_ps(lanes[1] + 8);
        c20 = _mm256_loadu_ps(lanes[2]); c21 = _mm256_loadu_ps(lanes[2] + 8); c30 = _mm256_loadu_ps(lanes[3]); c31 = _mm256_loadu_ps(lanes[3] + 8);
        c40 = _mm256_loadu_ps(lanes[4]); c41 = _mm256_loadu_ps(lanes[4] + 8);
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = _mm256_setzero_ps();
    }
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4];
    long runs_left = layout.rows * layout.columns, run_column = 0;
    for (;;) {
        for (long p = 0; p < layout.span; p++, b += ldb) {
            // The line `prefetch` floats ahead in the panel, into L2 (nnb_prefetch_distance).
            if (prefetch) _mm_prefetch((const char *)(b + prefetch), _MM_HINT_T1);
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
            __m256 ar = _mm256_broadcast_ss(a0 + p);
            c00 = _mm256_fmadd_ps(ar, b0, c00); c01 = _mm256_fmadd_ps(ar, b1, c01);
            ar = _mm256_broadcast_ss(a1 + p);
            c10 = _mm256_fmadd_ps(ar, b0, c10); c11 = _mm256_fmadd_ps(ar, b1, c11);
            ar = _mm256_broadcast_ss(a2 + p);
            c20 = _mm256_fmadd_ps(ar, b0, c20); c21 = _mm256_fmadd_ps(ar, b1, c21);
            ar = _mm256_broadcast_ss(a3 + p);
            c30 = _mm256_fmadd_ps(ar, b0, c30); c31 = _mm256_fmadd_ps(ar, b1, c31);
            ar = _mm256_broadcast_ss(a4 + p);
            c40 = _mm256_fmadd_ps(ar, b0, c40); c41 = _mm256_fmadd_ps(ar, b1, c41);
        }
        if (--runs_left == 0) break;
        // The next run: along the row, or the first of the next row.
        long step = layout.column_step;
        if (++run_column == layout.columns) {
            run_column = 0;
            step = layout.row_step - (layout.columns - 1) * layout.column_step;
        }
        a0 += step; a1 += step; a2 += step; a3 += step; a4 += step;
    }
    __m256 results[5][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}};
    if (post && nnb_epilogue_acts(post)) {
        __m256 bias[2], scale[2], shift[2];
        load16(post->bias, width, bias);
        load16(post->scale, width, scale);
        load16(post->shift, width, shift);
        for (long row = 0; row < 5; row++) {
            __m256 addend[2];
            if (post->addend) load16(post->addend + (row < rows ? row : 0) * post->addend_stride, width, addend);
            for (int half = 0; half < 2; half++) {
                __m256 v = results[row][half];
                if (post->bias) v = _mm256_add_ps(v, bias[half]);
                if (post->scale) v = _mm256_add_ps(_mm256_mul_ps(v, scale[half]), shift[half]);
                if (post->addend) v = _mm256_add_ps(v, addend[half]);
                // maxps and minps return their second operand when either is NaN: x second keeps
                // NaN NaN, as Keras's relu does.
                if (post->activation != NNB_ACTIVATION_LINEAR) v = _mm256_max_ps(_mm256_setzero_ps(), v);
                if (post->activation == NNB_ACTIVATION_RELU6) v = _mm256_min_ps(_mm256_set1_ps(6.0f), v);
                results[row][half] = v;
            }
        }
    }
    for (long row = 0; row < rows; row++) {
        if (width == 16) {
            _mm256_storeu_ps(r[row], results[row][0]);
            _mm256_storeu_ps(r[row] + 8, results[row][1]);
        } else {
            float lanes[16];
            _mm256_storeu_ps(lanes, results[row][0]);
            _mm256_storeu_ps(lanes + 8, results[row][1]);
            for (long q = 0; q < width; q++) r[row][q] = lanes[q];
        }
    }
}

// The rows of a plain row-major block of a: rows past `rows` repeat row 0.
static inline void row_starts(const float *a, long lda, long rows, const float *starts[5]) {
    for (long row = 0; row < 5; row++) starts[row] = a + (row < rows ? row * lda : 0);
}

AVX2 static void sgemm_small_avx2(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                                  long m, long n, long k, int accumulate) {
    long full = n - n % 16;
    // Column blocks outermost: one block of b (k × 16) stays in L1 while every row block of a
    // (small here: a recurrent state) passes over it, instead of b streaming from L2 per row block.
    for (long j = 0; j < full; j += 16) {
        for (long i = 0; i < m; i += 5) {
            long rows = m - i < 5 ? m - i : 5;
            const float *starts[5];
            row_starts(a + i * lda, lda, rows, starts);
            tile(starts, (runs){1, 0, 1, 0, k}, b + j, ldb, c + i * ldc + j, ldc, rows, 16, accumulate, NULL, 0);
        }
    }
    // The last n % 16 columns, one at a time.
    for (long r = 0; r < m; r++) {
        for (long j = full; j < n; j++) {
            float sum = accumulate ? c[r * ldc + j] : 0.0f;
            for (long p = 0; p < k; p++) sum = fmaf(a[r * lda + p], b[p * ldb + j], sum);
            c[r * ldc + j] = sum;
        }
    }
}

void nnb_pack_panels(const float *b, long ldb, long k, long n, float *packed) {
    nnb_pack_panel_rows(b, ldb, k, 0, k, n, packed);
}

void nnb_pack_panel_rows(const float *b, long ldb, long k, long first, long count, long n, float *packed) {
    long panels = (n + 15) / 16;
    for (long j = 0; j < panels; j++) {
        float *panel = packed + j * k * 16;
        long width = n - j * 16 < 16 ? n - j * 16 : 16;
        for (long p = first; p < first + count; p++) {
            const float *row = b + p * ldb + j * 16;
            if (width == 16) {
                memcpy(panel + p * 16, row, 16 * sizeof(float));
            } else {
                for (long q = 0; q < 16; q++) panel[p * 16 + q] = q < width ? row[q] : 0.0f;
            }
        }
    }
}

// Stores 16 results of panel j for one row after the epilogue; only the first `width` columns are
// written. The sums already hold c's old values when the product accumulates (see `tile`).
AVX2 static inline void store_row16(float *out, __m256 r0, __m256 r1, long width, const float *bias, int relu) {
    float lanes[16];
    if (bias) {
        float b[16] = {0};
        for (long q = 0; q < width; q++) b[q] = bias[q];
        r0 = _mm256_add_ps(r0, _mm256_loadu_ps(b));
        r1 = _mm256_add_ps(r1, _mm256_loadu_ps(b + 8));
    }
    if (relu) {
        r0 = _mm256_max_ps(_mm256_setzero_ps(), r0);
        r1 = _mm256_max_ps(_mm256_setzero_ps(), r1);
    }
    if (width == 16) {
        _mm256_storeu_ps(out, r0);
        _mm256_storeu_ps(out + 8, r1);
    } else {
        _mm256_storeu_ps(lanes, r0);
        _mm256_storeu_ps(lanes + 8, r1);
        for (long q = 0; q < width; q++) out[q] = lanes[q];
    }
}

// c's old values for 16 columns of one row (zero past `width`), or zeros when not accumulating:
// where every kernel's sums start.
AVX2 static inline void start_row16(const float *out, long width, int accumulate, __m256 *r0, __m256 *r1) {
    if (!accumulate) {
        *r0 = *r1 = _mm256_setzero_ps();
        return;
    }
    float lanes[16] = {0};
    for (long q = 0; q < width; q++) lanes[q] = out[q];
    *r0 = _mm256_loadu_ps(lanes);
    *r1 = _mm256_loadu_ps(lanes + 8);
}

// One row times the panels: y[n] (+)= x[k] · packed, then the epilogue. Four panels (64 columns)
// at a time, so that each broadcast of x[p] feeds eight independent FMAs; the panels stream from
// memory side by side. Each column is one chain of FMAs in p's order from c's old value (or 0),
// exactly as `tile` computes it, so a row gives the same bits alone or inside a batch.
AVX2 static void row_times_panels(const float *x, const float *packed, float *y, long n, long k, int accumulate,
                                  const float *bias, int relu) {
    long panels = (n + 15) / 16, j = 0;
    for (; j + 4 <= panels; j += 4) {
        const float *p0 = packed + j * k * 16, *p1 = p0 + k * 16, *p2 = p1 + k * 16, *p3 = p2 + k * 16;
        __m256 a0, a1, b0, b1, c0, c1, d0, d1;
        start_row16(y + j * 16, n - j * 16 < 16 ? n - j * 16 : 16, accumulate, &a0, &a1);
        start_row16(y + (j + 1) * 16, n - (j + 1) * 16 < 16 ? n - (j + 1) * 16 : 16, accumulate, &b0, &b1);
        start_row16(y + (j + 2) * 16, n - (j + 2) * 16 < 16 ? n - (j + 2) * 16 : 16, accumulate, &c0, &c1);
        start_row16(y + (j + 3) * 16, n - (j + 3) * 16 < 16 ? n - (j + 3) * 16 : 16, accumulate, &d0, &d1);
        for (long p = 0; p < k; p++) {
            __m256 xp = _mm256_broadcast_ss(x + p);
            a0 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(p0 + p * 16), a0); a1 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(p0 + p * 16 + 8), a1);
            b0 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(p1 + p * 16), b0); b1 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(p1 + p * 16 + 8), b1);
            c0 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(p2 + p * 16), c0); c1 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(p2 + p * 16 + 8), c1);
            d0 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(p3 + p * 16), d0); d1 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(p3 + p * 16 + 8), d1);
        }
        __m256 sums[4][2] = {{a0, a1}, {b0, b1}, {c0, c1}, {d0, d1}};
        for (long q = 0; q < 4; q++) {
            long column = (j + q) * 16, width = n - column < 16 ? n - column : 16;
            store_row16(y + column, sums[q][0], sums[q][1], width, bias ? bias + column : 0, relu);
        }
    }
    for (; j < panels; j++) {
        const float *panel = packed + j * k * 16;
        long column = j * 16, width = n - column < 16 ? n - column : 16;
        __m256 a0, a1;
        start_row16(y + column, width, accumulate, &a0, &a1);
        for (long p = 0; p < k; p++) {
            __m256 x0 = _mm256_broadcast_ss(x + p);
            a0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(panel + p * 16), a0); a1 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(panel + p * 16 + 8), a1);
        }
        store_row16(y + column, a0, a1, width, bias ? bias + column : 0, relu);
    }
}

AVX2 static void row_times_matrix_avx2(const float *x, const float *b, long ldb, float *y, long n, long k, int accumulate,
                                       const float *bias, int relu) {
    // Whole rows of b, four at a time, added into y (which stays in L1): b streams from memory
    // once, in order. Reading it 64 columns at a time instead (as row_times_panels reads
    // panels) ran at half the speed. Each y[j] is one chain of FMAs in p's order from its old
    // value (or 0), then the bias: the order of `tile`, so this equals the packed product bit for bit.
    long vector_n = n / 8 * 8;
    if (!accumulate) for (long j = 0; j < n; j++) y[j] = 0.0f;
    long p = 0;
    for (; p + 4 <= k; p += 4) {
        const float *b0 = b + p * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
        __m256 x0 = _mm256_broadcast_ss(x + p), x1 = _mm256_broadcast_ss(x + p + 1);
        __m256 x2 = _mm256_broadcast_ss(x + p + 2), x3 = _mm256_broadcast_ss(x + p + 3);
        for (long j = 0; j < vector_n; j += 8) {
            __m256 sum = _mm256_fmadd_ps(x0, _mm256_loadu_ps(b0 + j), _mm256_loadu_ps(y + j));
            sum = _mm256_fmadd_ps(x1, _mm256_loadu_ps(b1 + j), sum);
            sum = _mm256_fmadd_ps(x2, _mm256_loadu_ps(b2 + j), sum);
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(x3, _mm256_loadu_ps(b3 + j), sum));
        }
        for (long j = vector_n; j < n; j++)
            y[j] = fmaf(x[p + 3], b3[j], fmaf(x[p + 2], b2[j], fmaf(x[p + 1], b1[j], fmaf(x[p], b0[j], y[j]))));
    }
    for (; p < k; p++)
        for (long j = 0; j < n; j++) y[j] = fmaf(x[p], b[p * ldb + j], y[j]);
    if (bias)
        for (long j = 0; j < n; j++) y[j] += bias[j];
    if (relu)
        for (long j = 0; j < n; j++) y[j] = y[j] < 0 ? 0.0f : y[j];
}

AVX2 static void sgemm_packed_avx2(const float *a, long lda, const float *packed, float *c, long ldc, long m, long n, long k,
                                   int accumulate, const float *bias, int relu) {
    if (m == 1) {
        row_times_panels(a, packed, c, n, k, accumulate, bias, relu);
        return;
    }
    long panels = (n + 15) / 16, chunk = nnb_packed_k_chunk(n, k);
    // k-chunks outermost, then row blocks, then panels: a block of five rows of a stays in L1
    // while the chunk's panels pass over it. One chunk (k itself) unless the panels outgrow L2:
    // then each chunk of every panel is read from memory once per call instead of once per row
    // block (a Dense 6272×256 at batch 64 re-read its 6.4 MB weight 13 times). A chunk after the
    // first adds to the sums the one before stored in c (a float, as the register held: each
    // element is still one FMA chain in k's order); the bias and relu come with the last chunk.
    const nnb_epilogue post = {bias, 0, 0, 0, 0, relu ? NNB_ACTIVATION_RELU : NNB_ACTIVATION_LINEAR};
    for (long first = 0;;) {
        long length = k - first < chunk ? k - first : chunk, last = first + length >= k;
        for (long i = 0; i < m; i += 5) {
            long rows = m - i < 5 ? m - i : 5;
            const float *starts[5];
            row_starts(a + i * lda + first, lda, rows, starts);
            for (long j = 0; j < panels; j++) {
                nnb_epilogue here = nnb_epilogue_at(&post, 0, j * 16);
                tile(starts, (runs){1, 0, 1, 0, length}, packed + (j * k + first) * 16, 16, c + i * ldc + j * 16, ldc, rows,
                     n - j * 16 < 16 ? n - j * 16 : 16, accumulate || first > 0, last ? &here : NULL,
                     nnb_prefetch_distance(i, 5, last, length));
            }
        }
        if (last) break;
        first += length;
    }
}

AVX2 static void conv_packed_avx2(const float *x, long input_height, long input_width, long channels,
                                  long output_height, long output_width, long stride_height, long stride_width,
                                  long row_runs, long row_step, long column_runs, long column_step, long span,
                                  const float *packed, long n, float *c, long ldc, long first, long count,
                                  const nnb_epilogue *post) {
    long k = row_runs * column_runs * span, panels = (n + 15) / 16;
    long per_image = output_height * output_width;
    const runs whole = {row_runs, row_step, column_runs, column_step, span};
    // k-chunks outermost when the panels outgrow L2, as in sgemm_packed_avx2 (nnb_patch_chunk).
    for (long done = 0;;) {
        long length;
        patch_chunk part = nnb_patch_chunk(whole, n, done, &length);
        // The next pixel's position, advanced one pixel at a time (no division per pixel).
        long image = first / per_image, row = first % per_image / output_width, column = first % output_width;
        for (long i = 0; i < count; i += 5) {
            long rows = count - i < 5 ? count - i : 5;
            const float *starts[5];
            for (long q = 0; q < 5; q++) {
                if (q < rows) {
                    starts[q] = x + ((image * input_height + row * stride_height) * input_width + column * stride_width) * channels + part.offset;
                    if (++column == output_width) {
                        column = 0;
                        if (++row == output_height) { row = 0; image++; }
                    }
                } else {
                    starts[q] = starts[0];
                }
            }
            float *out = c + i * ldc;
            for (long j = 0; j < panels; j++) {
                nnb_epilogue here = nnb_epilogue_at(post, i, j * 16);
                tile(starts, part.layout, packed + (j * k + part.k_first) * 16, 16, out + j * 16, ldc, rows,
                     n - j * 16 < 16 ? n - j * 16 : 16, part.k_first > 0, part.last && post ? &here : NULL,
                     nnb_prefetch_distance(i, 5, part.last, length));
            }
        }
        if (part.last) break;
        done += length;
    }
}

// The GEMM-family entry points: the AVX-512 kernels (kernels_avx512.c) at that level, else the
// AVX2 ones above. Both give the same bits (each element one FMA chain in k's order, then the
// same epilogue), so the level changes only the speed.
void nnb_sgemm_small(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                     long m, long n, long k, int accumulate) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) nnb_sgemm_small_avx512(a, lda, b, ldb, c, ldc, m, n, k, accumulate);
    else sgemm_small_avx2(a, lda, b, ldb, c, ldc, m, n, k, accumulate);
}

void nnb_sgemm_packed(const float *a, long lda, const float *packed, float *c, long ldc, long m, long n, long k,
                      int accumulate, const float *bias, int relu) {
    // One row (a recurrent step at batch 1, a one-sample Dense) streams the panels from L2 or
    // memory: 16-lane chains where they are faster there (nnb_rows_in_16_lanes), else the AVX2
    // row_times_panels at both levels; the bits are the same either way.
    if (m == 1 && nnb_kernel_level() >= NNB_KERNELS_AVX512 && nnb_rows_in_16_lanes())
        nnb_row_times_panels_avx512(a, packed, c, n, k, accumulate, bias, relu);
    else if (m > 1 && nnb_kernel_level() >= NNB_KERNELS_AVX512) nnb_sgemm_packed_avx512(a, lda, packed, c, ldc, m, n, k, accumulate, bias, relu);
    else sgemm_packed_avx2(a, lda, packed, c, ldc, m, n, k, accumulate, bias, relu);
}

void nnb_row_times_matrix(const float *x, const float *b, long ldb, float *y, long n, long k, int accumulate,
                          const float *bias, int relu) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) nnb_row_times_matrix_avx512(x, b, ldb, y, n, k, accumulate, bias, relu);
    else row_times_matrix_avx2(x, b, ldb, y, n, k, accumulate, bias, relu);
}

void nnb_conv_packed(const float *x, long input_height, long input_width, long channels,
                     long output_height, long output_width, long stride_height, long stride_width,
                     long row_runs, long row_step, long column_runs, long column_step, long span,
                     const float *packed, long n, float *c, long ldc, long first, long count,
                     const nnb_epilogue *post) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512)
        nnb_conv_packed_avx512(x, input_height, input_width, channels, output_height, output_width, stride_height, stride_width,
                               row_runs, row_step, column_runs, column_step, span, packed, n, c, ldc, first, count, post);
    else
        conv_packed_avx2(x, input_height, input_width, channels, output_height, output_width, stride_height, stride_width,
                         row_runs, row_step, column_runs, column_step, span, packed, n, c, ldc, first, count, post);
}

long nnb_gemm_block_rows(void) { return nnb_kernel_level() >= NNB_KERNELS_AVX512 ? nnb_gemm_block_rows_avx512() : 5; }

AVX2 void nnb_max_window(const float *corner, long rows, long row_step, long columns, long column_step, long channels, float *out) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) {
        nnb_max_window_avx512(corner, rows, row_step, columns, column_step, channels, out);
        return;
    }
    long c = 0;
    for (; c + 8 <= channels; c += 8) {
        __m256 best = _mm256_set1_ps(-__builtin_inff());
        for (long r = 0; r < rows; r++)
            for (long q = 0; q < columns; q++) best = _mm256_max_ps(_mm256_loadu_ps(corner + r * row_step + q * column_step + c), best);
        _mm256_storeu_ps(out + c, best);
    }
    for (; c < channels; c++) {
        float best = -__builtin_inff();
        for (long r = 0; r < rows; r++)
            for (long q = 0; q < columns; q++) {
                float v = corner[r * row_step + q * column_step + c];
                best = v > best ? v : best;
            }
        out[c] = best;
    }
}

// Cephes's expf, as FastMath.exp: n = round(x / ln 2) by the 1.5·2^23 trick, a degree-6
// polynomial on the remainder, and 2^n built in the exponent bits. The clamp keeps NaN (maxps
// and minps return their second operand when either is NaN, so x goes second), and FMAs fold the
// range reduction (ln 2 = 0.693359375 − 2.12194440e-4, the first part exact in a product with n):
// 15 operations, down from 24 with a compare and blend to restore NaN, which made the LSTM gates
// about a third faster.
AVX2 static inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-87.3f), _mm256_min_ps(_mm256_set1_ps(88.3f), x));
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 fx = _mm256_sub_ps(shifted, magic);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fmadd_ps(fx, _mm256_set1_ps(2.12194440e-4f), x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_add_ps(_mm256_fmadd_ps(y, z, x), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000 - 127));
    return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(bits, 23)));
}

// 1 / x. A reciprocal estimate with a Newton step measured no faster here (the exp polynomial,
// not the division, bounds the gates), so the exact division stays.
AVX2 static inline __m256 reciprocal8(__m256 x) {
    return _mm256_div_ps(_mm256_set1_ps(1.0f), x);
}

// NaN in gives NaN out: exp8 keeps it.
AVX2 static inline __m256 sigmoid8(__m256 v) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
    return reciprocal8(_mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// tanh(x) = 2σ(2x) − 1.
AVX2 static inline __m256 tanh8(__m256 v) {
    __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), v));
    return _mm256_fmsub_ps(_mm256_set1_ps(2.0f), reciprocal8(_mm256_add_ps(_mm256_set1_ps(1.0f), e)), _mm256_set1_ps(1.0f));
}

// Applies an 8-lane function to count floats in place, the tail through a zero-padded vector.
AVX2 static inline void map8(float *x, long count, __m256 (*function)(__m256)) {
    long i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, function(_mm256_loadu_ps(x + i)));
    if (i < count) {
        float tail[8] = {0};
        for (long j = 0; j < count - i; j++) tail[j] = x[i + j];
        _mm256_storeu_ps(tail, function(_mm256_loadu_ps(tail)));
        for (long j = 0; j < count - i; j++) x[i + j] = tail[j];
    }
}

AVX2 void nnb_sigmoid(float *x, long count) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) { nnb_sigmoid_avx512(x, count); return; }
    map8(x, count, sigmoid8);
}
AVX2 void nnb_tanh(float *x, long count) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) { nnb_tanh_avx512(x, count); return; }
    map8(x, count, tanh8);
}

AVX2 void nnb_lstm_gates_range(float *z, const float *c_in, float *c_out, float *h_out, long stride, long count) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) { nnb_lstm_gates_avx512(z, c_in, c_out, h_out, stride, count); return; }
    // Two passes: the four gates and the new cell state, then h. In one pass, tanh(c') waited
    // on the gates of its own lanes, and the out-of-order window could hold barely two such
    // chains (90 cycles per 8 units). Split, every iteration of each pass is independent.
    long u = 0;
    float *activated_o = z + 3 * stride;
    for (; u + 8 <= count; u += 8) {
        __m256 i = sigmoid8(_mm256_loadu_ps(z + u)), f = sigmoid8(_mm256_loadu_ps(z + stride + u));
        __m256 g = tanh8(_mm256_loadu_ps(z + 2 * stride + u)), o = sigmoid8(_mm256_loadu_ps(z + 3 * stride + u));
        _mm256_storeu_ps(c_out + u, _mm256_fmadd_ps(f, _mm256_loadu_ps(c_in + u), _mm256_mul_ps(i, g)));
        _mm256_storeu_ps(activated_o + u, o);
    }
    for (long v = 0; v + 8 <= count; v += 8)
        _mm256_storeu_ps(h_out + v, _mm256_mul_ps(_mm256_loadu_ps(activated_o + v), tanh8(_mm256_loadu_ps(c_out + v))));
    for (; u < count; u++) {
        // The tail through the same 8-lane functions, one lane used.
        float lanes[4][8] = {{0}};
        for (int gate = 0; gate < 4; gate++) lanes[gate][0] = z[gate * stride + u];
        __m256 i = sigmoid8(_mm256_loadu_ps(lanes[0])), f = sigmoid8(_mm256_loadu_ps(lanes[1]));
        __m256 g = tanh8(_mm256_loadu_ps(lanes[2])), o = sigmoid8(_mm256_loadu_ps(lanes[3]));
        float previous[8] = {c_in[u]}, cellOut[8], hOut[8];
        __m256 cell = _mm256_fmadd_ps(f, _mm256_loadu_ps(previous), _mm256_mul_ps(i, g));
        _mm256_storeu_ps(cellOut, cell);
        _mm256_storeu_ps(hOut, _mm256_mul_ps(o, tanh8(cell)));
        c_out[u] = cellOut[0];
        h_out[u] = hOut[0];
    }
}

AVX2 void nnb_lstm_gates(float *z, float *c, float *h, long units) { nnb_lstm_gates_range(z, c, c, h, units, units); }

// The first min(count, 8) floats at p, zeros after: a whole vector, or a masked load that reads
// nothing past the count (vmaskmovps, slow as a store on AMD, so only for the tail).
AVX2 static inline __m256 load8(const float *p, long count) {
    if (count >= 8) return _mm256_loadu_ps(p);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

// Stores the first min(count, 8) lanes of v at p.
AVX2 static inline void store8(float *p, __m256 v, long count) {
    if (count >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), v);
}

AVX2 void nnb_gru_gates_range(float *x, const float *r, const float *h_in, float *h_out, long stride, long count) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) { nnb_gru_gates_avx512(x, r, h_in, h_out, stride, count); return; }
    // Two passes, as the LSTM's: z and ĥ (stored over x's z and h thirds), then h'. The last,
    // partial group runs the same code on masked loads (zeros in the unused lanes).
    for (long u = 0; u < count; u += 8) {
        long n = count - u;
        __m256 z = sigmoid8(_mm256_add_ps(load8(x + u, n), load8(r + u, n)));
        __m256 reset = sigmoid8(_mm256_add_ps(load8(x + stride + u, n), load8(r + stride + u, n)));
        __m256 candidate = tanh8(_mm256_fmadd_ps(reset, load8(r + 2 * stride + u, n), load8(x + 2 * stride + u, n)));
        store8(x + u, z, n);
        store8(x + 2 * stride + u, candidate, n);
    }
    for (long u = 0; u < count; u += 8) {
        long n = count - u;
        __m256 z = load8(x + u, n), candidate = load8(x + 2 * stride + u, n);
        // z·h + (1 − z)·ĥ = ĥ + z·(h − ĥ): one FMA, and h' = h exactly when z = 1.
        store8(h_out + u, _mm256_fmadd_ps(z, _mm256_sub_ps(load8(h_in + u, n), candidate), candidate), n);
    }
}

AVX2 void nnb_gru_gates(float *x, const float *r, float *h, long units) { nnb_gru_gates_range(x, r, h, h, units, units); }

// erfc(z) for z ≥ 0 (or NaN), Numerical Recipes' erfcc (Press et al., 2nd ed., 6.2): t = 1/(1 + z/2),
// erfc = t·exp(−z² + P(t)) with a degree-9 Chebyshev-fitted P; relative error under 1.2e-7 for every
// z, so 1 + erf(x) = erfc(−x) stays accurate where it is small. −z² + P(t) is one FMA (z² is not
// rounded); exp8's clamp makes erfc(∞) = 0·e^−87.3 = 0.
AVX2 static inline __m256 erfc8(__m256 z) {
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    return _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));
}

// gelu(x) = x/2 · (1 + erf(x/√2)): x/2 · (2 − erfc(x/√2)) for x ≥ 0, x/2 · erfc(|x|/√2) below, so
// the negative side keeps erfc's relative accuracy. NaN gives NaN (x ≥ 0 is false, erfc(NaN) is
// NaN), gelu(−∞) = −∞·0 = NaN and gelu(∞) = ∞, as Keras's formula gives.
AVX2 static inline __m256 gelu8(__m256 x) {
    __m256 magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 e = erfc8(_mm256_mul_ps(magnitude, _mm256_set1_ps(0.70710678118654752f)));
    __m256 positive = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    __m256 onePlusErf = _mm256_blendv_ps(e, _mm256_sub_ps(_mm256_set1_ps(2.0f), e), positive);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), onePlusErf);
}

AVX2 void nnb_gelu(float *x, long count) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) { nnb_gelu_avx512(x, count); return; }
    for (long i = 0; i < count; i += 8) store8(x + i, gelu8(load8(x + i, count - i)), count - i);
}

AVX2 void nnb_softmax(float *x, long rows, long length, int log) {
    if (nnb_kernel_level() >= NNB_KERNELS_AVX512) { nnb_softmax_avx512(x, rows, length, log); return; }
    // Per row: the peak (NaN passed over; a peak that is not finite counts as 0), then Σ e^(x − peak)
    // in double, sixteen partial sums (element i into sum i mod 16, in i's order) added in lane
    // order at the end: the AVX-512 kernel's order exactly, 4 × 4 doubles here against 2 × 8 there.
    for (long row = 0; row < rows; row++, x += length) {
        __m256 best = _mm256_set1_ps(-__builtin_inff());
        for (long i = 0; i < length; i += 8) {
            __m256 v = load8(x + i, length - i);
            if (length - i < 8) v = _mm256_blendv_ps(v, best, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)(length - i - 1)))));
            best = _mm256_max_ps(v, best);
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, best);
        float peak = lanes[0];
        for (int q = 1; q < 8; q++) peak = lanes[q] > peak ? lanes[q] : peak;
        if (!(peak - peak == 0.0f)) {
            // ±∞, or no number at all: exp8's clamp would make e^∞ and e^−∞ finite.
            nnb_softmax_row_exact(x, length, log);
            continue;
        }
        peak += 0.0f;  // −0 → +0: which zero the lanes kept must not matter
        __m256 shift = _mm256_set1_ps(peak);
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
        for (long i = 0; i < length; i += 16) {
            long n = length - i;
            // e^d for d = x − peak, exactly 0 below −87.3 (exp8's clamp would give 2^−126 there):
            // a masked-out −1e9 or a −∞ weighs 0, as in Keras. NaN stays NaN (the compare is false).
            __m256 d0 = _mm256_sub_ps(load8(x + i, n), shift), d1 = _mm256_sub_ps(load8(x + i + 8, n - 8), shift);
            __m256 e0 = _mm256_andnot_ps(_mm256_cmp_ps(d0, _mm256_set1_ps(-87.3f), _CMP_LT_OQ), exp8(d0));
            __m256 e1 = _mm256_andnot_ps(_mm256_cmp_ps(d1, _mm256_set1_ps(-87.3f), _CMP_LT_OQ), exp8(d1));
            if (n < 16) {
                // Lanes past the row add exactly zero.
                e0 = _mm256_and_ps(e0, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
                e1 = _mm256_and_ps(e1, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)n - 8), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
            }
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e0)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e0, 1)));
            s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm256_castps256_ps128(e1)));
            s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm256_extractf128_ps(e1, 1)));
            if (!log) {
                store8(x + i, e0, n);
                store8(x + i + 8, e1, n - 8);
            }
        }
        double partial[16], sum = 0;
        _mm256_storeu_pd(partial, s0); _mm256_storeu_pd(partial + 4, s1); _mm256_storeu_pd(partial + 8, s2); _mm256_storeu_pd(partial + 12, s3);
        for (int q = 0; q < 16; q++) sum += partial[q];
        if (log) {
            __m256 logSum = _mm256_set1_ps((float)__builtin_log(sum));
            for (long i = 0; i < length; i += 8)
                store8(x + i, _mm256_sub_ps(_mm256_sub_ps(load8(x + i, length - i), shift), logSum), length - i);
        } else {
            __m256d scale = _mm256_set1_pd(1.0 / sum);
            for (long i = 0; i < length; i += 8) {
                __m256 e = load8(x + i, length - i);
                __m128 low = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)), scale));
                __m128 high = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)), scale));
                store8(x + i, _mm256_insertf128_ps(_mm256_castps128_ps256(low), high, 1), length - i);
            }
        }
    }
}

#else

#include <math.h>

int nnb_has_avx2_fma(void) { return 0; }
int nnb_cpu_kernel_level(void) { return NNB_KERNELS_BASELINE; }
void nnb_sgemm_small(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                     long m, long n, long k, int accumulate) {
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            float sum = accumulate ? c[i * ldc + j] : 0.0f;
            for (long p = 0; p < k; p++) sum += a[i * lda + p] * b[p * ldb + j];
            c[i * ldc + j] = sum;
        }
}
void nnb_sigmoid(float *x, long count) { for (long i = 0; i < count; i++) x[i] = 1.0f / (1.0f + expf(-x[i])); }
void nnb_tanh(float *x, long count) { for (long i = 0; i < count; i++) x[i] = tanhf(x[i]); }
void nnb_pack_panels(const float *b, long ldb, long k, long n, float *packed) {
    nnb_pack_panel_rows(b, ldb, k, 0, k, n, packed);
}
void nnb_pack_panel_rows(const float *b, long ldb, long k, long first, long count, long n, float *packed) {
    long panels = (n + 15) / 16;
    for (long j = 0; j < panels; j++)
        for (long p = first; p < first + count; p++)
            for (long q = 0; q < 16; q++) packed[(j * k + p) * 16 + q] = j * 16 + q < n ? b[p * ldb + j * 16 + q] : 0.0f;
}
void nnb_sgemm_packed(const float *a, long lda, const float *packed, float *c, long ldc, long m, long n, long k,
                      int accumulate, const float *bias, int relu) {
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            float sum = accumulate ? c[i * ldc + j] : 0.0f;
            for (long p = 0; p < k; p++) sum += a[i * lda + p] * packed[((j / 16) * k + p) * 16 + j % 16];
            if (bias) sum += bias[j];
            c[i * ldc + j] = relu && sum < 0 ? 0.0f : sum;
        }
}
void nnb_conv_packed(const float *x, long input_height, long input_width, long channels,
                     long output_height, long output_width, long stride_height, long stride_width,
                     long row_runs, long row_step, long column_runs, long column_step, long span,
                     const float *packed, long n, float *c, long ldc, long first, long count,
                     const nnb_epilogue *post) {
    long k = row_runs * column_runs * span, per_image = output_height * output_width;
    for (long i = 0; i < count; i++) {
        long pixel = first + i, image = pixel / per_image, row = pixel % per_image / output_width, column = pixel % output_width;
        const float *corner = x + ((image * input_height + row * stride_height) * input_width + column * stride_width) * channels;
        for (long j = 0; j < n; j++) {
            float sum = 0.0f;
            long p = 0;
            for (long r = 0; r < row_runs; r++)
                for (long q = 0; q < column_runs; q++)
                    for (long s = 0; s < span; s++, p++)
                        sum += corner[r * row_step + q * column_step + s] * packed[((j / 16) * k + p) * 16 + j % 16];
            c[i * ldc + j] = post ? nnb_epilogue_one(sum, post, i, j) : sum;
        }
    }
}
long nnb_gemm_block_rows(void) { return 4; }
void nnb_max_window(const float *corner, long rows, long row_step, long columns, long column_step, long channels, float *out) {
    for (long c = 0; c < channels; c++) {
        float best = -INFINITY;
        for (long r = 0; r < rows; r++)
            for (long q = 0; q < columns; q++) {
                float v = corner[r * row_step + q * column_step + c];
                best = v > best ? v : best;
            }
        out[c] = best;
    }
}
void nnb_row_times_matrix(const float *x, const float *b, long ldb, float *y, long n, long k, int accumulate,
                          const float *bias, int relu) {
    for (long j = 0; j < n; j++) {
        float sum = accumulate ? y[j] : 0.0f;
        for (long p = 0; p < k; p++) sum += x[p] * b[p * ldb + j];
        if (bias) sum += bias[j];
        y[j] = relu && sum < 0 ? 0.0f : sum;
    }
}
void nnb_gelu(float *x, long count) {
    for (long i = 0; i < count; i++) x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0))));
}
void nnb_softmax(float *x, long rows, long length, int log) {
    for (long row = 0; row < rows; row++, x += length) nnb_softmax_row_exact(x, length, log);
}
void nnb_gru_gates_range(float *x, const float *r, const float *h_in, float *h_out, long stride, long count) {
    for (long u = 0; u < count; u++) {
        float z = 1.0f / (1.0f + expf(-(x[u] + r[u]))), reset = 1.0f / (1.0f + expf(-(x[stride + u] + r[stride + u])));
        float candidate = tanhf(fmaf(reset, r[2 * stride + u], x[2 * stride + u]));
        x[u] = z;
        x[2 * stride + u] = candidate;
        h_out[u] = fmaf(z, h_in[u] - candidate, candidate);
    }
}
void nnb_gru_gates(float *x, const float *r, float *h, long units) { nnb_gru_gates_range(x, r, h, h, units, units); }
void nnb_lstm_gates_range(float *z, const float *c_in, float *c_out, float *h_out, long stride, long count) {
    for (long u = 0; u < count; u++) {
        float i = 1.0f / (1.0f + expf(-z[u])), f = 1.0f / (1.0f + expf(-z[stride + u]));
        float g = tanhf(z[2 * stride + u]), o = 1.0f / (1.0f + expf(-z[3 * stride + u]));
        c_out[u] = f * c_in[u] + i * g;
        h_out[u] = o * tanhf(c_out[u]);
    }
}
void nnb_lstm_gates(float *z, float *c, float *h, long units) { nnb_lstm_gates_range(z, c, c, h, units, units); }

#endif
