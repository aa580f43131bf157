// AVX-512 (F, BW, VL, DQ) versions of the GEMM-family kernels: the packed product's row blocks,
// the implicit-GEMM convolution, the in-place row-times-matrix product and
// the small unpacked product. Compiled per function (target attribute), so the binary still runs
// on any x86-64; kernels.c calls them when nnb_kernel_level() >= NNB_KERNELS_AVX512.
//
// Every element is computed as the AVX2 kernels compute it: c's old value (or 0), then one FMA per
// p in k's order, then the same epilogue (bias, then max(0, ·)). Only the width of a register and
// how many rows and columns share a block change, never an element's operations, so this path
// gives the AVX2 path's bits (KernelPathTests checks it), and batch invariance and the Keras
// fixtures carry over. Partial panels use lane masks instead of copies through a buffer.
#include "CKernels.h"
#include "gemm_avx512.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define INLINE inline __attribute__((always_inline))
// Loops over a block's rows and panels unroll fully, so that the accumulators are registers.
// (Where a loop has a single iteration clang has nothing left to unroll and says so; quiet.)
#define UNROLL _Pragma("clang loop unroll(full)")
#pragma clang diagnostic ignored "-Wpass-failed"

// The register block: ROWS rows of a × PANELS 16-column panels of b, one zmm accumulator each.
// 8 × 32 (16 accumulators; per step two panel rows and eight broadcasts, 10 loads per 16 FMAs,
// and the eight row pointers stay in registers) was chosen with Benchmarks/gemm_kernels.c on the
// Dense, recurrent and convolution shapes: level with 12 × 32, 10 × 32 and 6 × 64 within the
// noise, and faster on cnn_cifar's convolutions; 14 × 16 (one panel, a load per FMA) was about a
// fifth slower everywhere. The macros let that benchmark build the others.
#ifndef NNB_AVX512_ROWS
#define NNB_AVX512_ROWS 8
#endif
#ifndef NNB_AVX512_PANELS
#define NNB_AVX512_PANELS 2
#endif
enum { MAX_ROWS = NNB_AVX512_ROWS, MAX_PANELS = NNB_AVX512_PANELS };
// A product of one panel (16 columns or fewer) takes blocks of up to SINGLE_ROWS rows: 8 rows × 1
// panel are 8 accumulators, only as many FMAs as two FMA units keep in flight over their latency,
// so any wait on a broadcast stalled them. MobileNetV2's 112×112×32→16 projection (one thread,
// the AMD EPYC, Zen 5, `nnb_conv_packed` with its normalization): 0.084–0.088 → 0.074–0.077 ms.
// Which block a row falls in never changes its result.
#ifndef NNB_AVX512_SINGLE_ROWS
#define NNB_AVX512_SINGLE_ROWS 16
#endif
enum { SINGLE_ROWS = NNB_AVX512_SINGLE_ROWS > NNB_AVX512_ROWS ? NNB_AVX512_SINGLE_ROWS : NNB_AVX512_ROWS };
_Static_assert(SINGLE_ROWS <= 16, "at most 16 rows per block of one panel (the tiles made below)");
_Static_assert(NNB_AVX512_ROWS >= 1 && NNB_AVX512_ROWS <= 16, "1 to 16 rows per block");
_Static_assert(NNB_AVX512_PANELS == 1 || NNB_AVX512_PANELS == 2 || NNB_AVX512_PANELS == 4, "1, 2 or 4 panels per block");


// The first `width` of 16 lanes (all for 16 or more, none for 0 or less).
static INLINE __mmask16 first_lanes(long width) {
    return width >= 16 ? (__mmask16)0xFFFF : width <= 0 ? (__mmask16)0 : (__mmask16)((1u << width) - 1);
}

// The register-blocked core: c[ROWS × width] (+)= a[ROWS × k] · b[k × width], where row r of a
// starts at a[r] and lies as `layout` says, panel q of b starts panel_step floats after panel
// q − 1, and consecutive rows of b lie ldb floats apart (16 in a packed panel). width is at most
// PANELS·16 and more than (PANELS − 1)·16; lanes past it are neither read from c, bias or b nor
// stored. ROWS and PANELS are constants at every call (the dispatch below), so the accumulators
// stay in registers. Then `post` (NULL: nothing; see nnb_epilogue), at the block's first row and
// column, as `tile` in kernels.c applies it.
AVX512 static INLINE void tile(const int ROWS, const int PANELS, const int FULL, const float *const a[], const runs *where, const float *b, long ldb,
                               long panel_step, float *c, long ldc, long width, int accumulate, const nnb_epilogue *post,
                               long prefetch) {
    runs layout = *where;
    __m512 acc[SINGLE_ROWS][MAX_PANELS];
    __mmask16 mask[MAX_PANELS];
    UNROLL for (int q = 0; q < PANELS; q++) mask[q] = first_lanes(width - 16 * q);
    UNROLL for (int r = 0; r < ROWS; r++)
        UNROLL for (int q = 0; q < PANELS; q++)
            acc[r][q] = accumulate ? _mm512_maskz_loadu_ps(mask[q], c + r * ldc + 16 * q) : _mm512_setzero_ps();
    const float *row[SINGLE_ROWS];
    UNROLL for (int r = 0; r < ROWS; r++) row[r] = a[r];
    long runs_left = layout.rows * layout.columns, run_column = 0;
    for (;;) {
        for (long p = 0; p < layout.span; p++, b += ldb) {
            // The line `prefetch` floats ahead in each panel, into L2 (nnb_prefetch_distance).
            if (prefetch) UNROLL for (int q = 0; q < PANELS; q++) _mm_prefetch((const char *)(b + q * panel_step + prefetch), _MM_HINT_T1);
            __m512 panel[MAX_PANELS];
            UNROLL for (int q = 0; q < PANELS; q++) panel[q] = FULL ? _mm512_loadu_ps(b + q * panel_step) : _mm512_maskz_loadu_ps(mask[q], b + q * panel_step);
            UNROLL for (int r = 0; r < ROWS; r++) {
                __m512 x = _mm512_set1_ps(row[r][p]);
                UNROLL for (int q = 0; q < PANELS; q++) acc[r][q] = _mm512_fmadd_ps(x, panel[q], acc[r][q]);
            }
        }
        if (--runs_left == 0) break;
        // The next run: along the row, or the first of the next row.
        long step = layout.column_step;
        if (++run_column == layout.columns) {
            run_column = 0;
            step = layout.row_step - (layout.columns - 1) * layout.column_step;
        }
        UNROLL for (int r = 0; r < ROWS; r++) row[r] += step;
    }
    // The epilogue one step at a time over the whole block, each step tested once per block (a
    // test per element inside the unrolled loops cost a fifth of a 16-deep 1×1 convolution).
    if (post && nnb_epilogue_acts(post)) {
        if (post->bias)
            UNROLL for (int q = 0; q < PANELS; q++) {
                __m512 bias = _mm512_maskz_loadu_ps(mask[q], post->bias + 16 * q);
                UNROLL for (int r = 0; r < ROWS; r++) acc[r][q] = _mm512_add_ps(acc[r][q], bias);
            }
        if (post->scale)
            UNROLL for (int q = 0; q < PANELS; q++) {
                __m512 scale = _mm512_maskz_loadu_ps(mask[q], post->scale + 16 * q), shift = _mm512_maskz_loadu_ps(mask[q], post->shift + 16 * q);
                UNROLL for (int r = 0; r < ROWS; r++) acc[r][q] = _mm512_add_ps(_mm512_mul_ps(acc[r][q], scale), shift);
            }
        if (post->addend) {
            const float *addend = post->addend;
            long stride = post->addend_stride;
            UNROLL for (int r = 0; r < ROWS; r++)
                UNROLL for (int q = 0; q < PANELS; q++)
                    acc[r][q] = _mm512_add_ps(acc[r][q], _mm512_maskz_loadu_ps(mask[q], addend + r * stride + 16 * q));
        }
        // maxps and minps return their second operand when either is NaN: x second keeps NaN NaN.
        if (post->activation != NNB_ACTIVATION_LINEAR)
            UNROLL for (int r = 0; r < ROWS; r++) UNROLL for (int q = 0; q < PANELS; q++) acc[r][q] = _mm512_max_ps(_mm512_setzero_ps(), acc[r][q]);
        if (post->activation == NNB_ACTIVATION_RELU6)
            UNROLL for (int r = 0; r < ROWS; r++) UNROLL for (int q = 0; q < PANELS; q++) acc[r][q] = _mm512_min_ps(_mm512_set1_ps(6.0f), acc[r][q]);
    }
    if (width == 16 * PANELS) {
        UNROLL for (int r = 0; r < ROWS; r++)
            UNROLL for (int q = 0; q < PANELS; q++) _mm512_storeu_ps(c + r * ldc + 16 * q, acc[r][q]);
        return;
    }
    UNROLL for (int r = 0; r < ROWS; r++)
        UNROLL for (int q = 0; q < PANELS; q++) _mm512_mask_storeu_ps(c + r * ldc + 16 * q, mask[q], acc[r][q]);
}

// The tile for exactly R rows and P panels, as a function of its own: compiled alone, its loops
// over rows and panels unroll and its accumulators become registers (inlined all into one caller,
// the larger blocks kept their accumulators on the stack).
// R where a block of P panels may take R rows (SINGLE_ROWS for one panel, else MAX_ROWS), else 1
// (a tile the dispatch never calls).
#define TILE_ROWS(R, P) ((R) <= ((P) == 1 ? SINGLE_ROWS : MAX_ROWS) ? (R) : 1)
#define NNB_TILE(R, P)                                                                                             \
    AVX512 __attribute__((noinline)) static void tile_##R##_##P(const float *const a[], const runs *layout, const float *b, \
                                                               long ldb, long panel_step, float *c, long ldc,         \
                                                               long width, int accumulate, const nnb_epilogue *post, long prefetch) { \
        if (width == 16 * P)                                                                                         \
            tile(TILE_ROWS(R, P), P <= MAX_PANELS ? P : 1, 1, a, layout, b, ldb, panel_step, c, ldc, width, accumulate, post, prefetch); \
        else                                                                                                       \
            tile(TILE_ROWS(R, P), P <= MAX_PANELS ? P : 1, 0, a, layout, b, ldb, panel_step, c, ldc, width, accumulate, post, prefetch); \
    }
#define NNB_TILES(R) NNB_TILE(R, 1) NNB_TILE(R, 2) NNB_TILE(R, 4)
NNB_TILES(1) NNB_TILES(2) NNB_TILES(3) NNB_TILES(4) NNB_TILES(5) NNB_TILES(6) NNB_TILES(7) NNB_TILES(8)
NNB_TILES(9) NNB_TILES(10) NNB_TILES(11) NNB_TILES(12) NNB_TILES(13) NNB_TILES(14) NNB_TILES(15) NNB_TILES(16)
#undef NNB_TILES
#undef NNB_TILE
#undef TILE_ROWS

typedef void (*tile_function)(const float *const a[], const runs *layout, const float *b, long ldb, long panel_step, float *c,
                              long ldc, long width, int accumulate, const nnb_epilogue *post, long prefetch);

// One block of `rows` (1...MAX_ROWS) rows × `panels` (1, 2 or 4, at most MAX_PANELS) panels,
// through the tile made for exactly that many, so a short last block computes no rows it does
// not store.
AVX512 static INLINE void block(long rows, long panels, const float *const a[], const runs *layout, const float *b, long ldb,
                                long panel_step, float *c, long ldc, long width, int accumulate, const nnb_epilogue *post,
                                long prefetch) {
#define NNB_ROW(R) {tile_##R##_1, tile_##R##_2, tile_##R##_4}
    static const tile_function tiles[16][3] = {
        NNB_ROW(1), NNB_ROW(2), NNB_ROW(3), NNB_ROW(4), NNB_ROW(5), NNB_ROW(6), NNB_ROW(7), NNB_ROW(8),
        NNB_ROW(9), NNB_ROW(10), NNB_ROW(11), NNB_ROW(12), NNB_ROW(13), NNB_ROW(14), NNB_ROW(15), NNB_ROW(16),
    };
#undef NNB_ROW
    tiles[rows - 1][panels == 4 ? 2 : panels == 2 ? 1 : 0](a, layout, b, ldb, panel_step, c, ldc, width, accumulate, post, prefetch);
}

// The most rows a block of a product of `panels` panels takes: SINGLE_ROWS for one, else MAX_ROWS.
static INLINE long block_rows(long panels) {
    return panels == 1 ? SINGLE_ROWS : MAX_ROWS;
}

// The rows of the next block when `left` rows remain, in a product of `panels` panels: as even as
// whole blocks allow (49 rows are 7 blocks of 7, not 6 of 8 and one of 1, whose one-row tile reads
// as many panels for an eighth of the work). Which block a row falls in never changes its result.
static INLINE long rows_next(long left, long panels) {
    long most = block_rows(panels), blocks = (left + most - 1) / most;
    return (left + blocks - 1) / blocks;
}

// How many panels the next block takes, of `left`: MAX_PANELS, else 2, else 1.
static INLINE long panels_next(long left) {
    return left >= MAX_PANELS ? MAX_PANELS : left >= 2 ? 2 : 1;
}

// Few rows against a large chunk of panels: the panels outermost. A call of at most PANELS_FIRST_ROWS
// rows whose chunk of panels passes PANELS_FIRST_BYTES (more than stays in L2 beside the rest)
// reads each group of panels from memory once, while it stays in L1 for every row block, where
// rows outermost read the whole chunk again for each block (7 times for 49 rows). The rows, a few
// KB each, stay in L2. MobileNetV2's Conv_1 at batch 1 (49 pixels, 320 → 1280, 1.6 MB of panels),
// one thread on the Intel Xeon (family 6, model 207): 0.51 against LiteRT's 0.37 ms before.
// Which block a row or panel falls in, and in what order they run, never changes a result.
enum { PANELS_FIRST_ROWS = 64 };
#define PANELS_FIRST_BYTES (512L << 10)
static INLINE int panels_first(long rows, long panels, long length) {
    return rows <= PANELS_FIRST_ROWS && panels * 16 * length * (long)sizeof(float) > PANELS_FIRST_BYTES;
}

// One k-chunk of a packed product or convolution, as its row blocks and panel groups see it.
typedef struct {
    const runs *layout;           // where each row's chunk of k lies, from its start
    const float *packed;          // the panels, chunk `k_first` on (panel q k·16 floats after q − 1)
    long k, n, panels, length;    // the whole k, the columns, their panels, and the chunk's k
    float *c;
    long ldc;
    int accumulate, last;         // add to c (an earlier chunk's sums, or the caller's); the last chunk
    const nnb_epilogue *post;     // the epilogue at c's first row and column (NULL: none), with the last chunk
} chunk_product;

// The block of `rows` rows from row i (their chunks start at starts[0...]) × the panel group from
// panel j (panels_next of those left).
AVX512 static INLINE void chunk_block(const chunk_product *h, long i, long rows, const float *const starts[], long j) {
    long group = panels_next(h->panels - j), width = h->n - j * 16 < 16 * group ? h->n - j * 16 : 16 * group;
    nnb_epilogue here = nnb_epilogue_at(h->post, i, j * 16);
    block(rows, group, starts, h->layout, h->packed + j * h->k * 16, 16, h->k * 16, h->c + i * h->ldc + j * 16, h->ldc, width,
          h->accumulate, h->last && h->post ? &here : NULL, nnb_prefetch_distance(i, block_rows(h->panels), h->last, h->length));
}

AVX512 void nnb_sgemm_small_avx512(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                                   long m, long n, long k, int accumulate) {
    const runs layout = {1, 0, 1, 0, k};
    // Column blocks outermost, as the AVX2 kernel: one block of b (k × 16·MAX_PANELS) stays in L1
    // while every row block of a passes over it. The last columns are masked lanes, never read.
    for (long j = 0; j < n; ) {
        long left = (n - j + 15) / 16, panels = panels_next(left), width = n - j < 16 * panels ? n - j : 16 * panels;
        for (long i = 0, rows; i < m; i += rows) {
            rows = rows_next(m - i, panels);
            const float *starts[SINGLE_ROWS];
            for (long r = 0; r < rows; r++) starts[r] = a + (i + r) * lda;
            block(rows, panels, starts, &layout, b + j, ldb, 16, c + i * ldc + j, ldc, width, accumulate, NULL, 0);
        }
        j += width;
    }
}

// `group` panels (1 to 8) of one row times the panels, 16 lanes each: y[n] (+)= x[k] · packed,
// then bias and relu, as row_times_panels (kernels.c) computes them, bit for bit: each column one
// chain of FMAs in p's order from y's old value (or 0), then + bias, then max(·, 0). Eight panels
// give eight independent chains per broadcast of x[p], enough to hide the FMA latency.
// `group` is a constant at each call (nnb_row_times_panels_avx512), so the sums stay in registers.
AVX512 static INLINE void row_panels16(const float *x, const float *panels, long k, float *y, long width, int group,
                                       int accumulate, const float *bias, int relu) {
    __m512 sums[8];
    __mmask16 masks[8];
    for (int q = 0; q < group; q++) {
        masks[q] = first_lanes(width - 16 * q);
        sums[q] = accumulate ? _mm512_maskz_loadu_ps(masks[q], y + 16 * q) : _mm512_setzero_ps();
    }
    for (long p = 0; p < k; p++) {
        __m512 xp = _mm512_set1_ps(x[p]);
        for (int q = 0; q < group; q++) sums[q] = _mm512_fmadd_ps(xp, _mm512_loadu_ps(panels + (q * k + p) * 16), sums[q]);
    }
    for (int q = 0; q < group; q++) {
        __m512 v = sums[q];
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(masks[q], bias + 16 * q));
        if (relu) v = _mm512_max_ps(_mm512_setzero_ps(), v);
        _mm512_mask_storeu_ps(y + 16 * q, masks[q], v);
    }
}

AVX512 void nnb_row_times_panels_avx512(const float *x, const float *packed, float *y, long n, long k, int accumulate,
                                        const float *bias, int relu) {
    long panels = (n + 15) / 16;
    for (long j = 0; j < panels;) {
        long left = n - 16 * j;
        const float *b = bias ? bias + 16 * j : NULL;
        if (panels - j >= 8) {
            row_panels16(x, packed + j * k * 16, k, y + 16 * j, left, 8, accumulate, b, relu);
            j += 8;
        } else if (panels - j >= 4) {
            row_panels16(x, packed + j * k * 16, k, y + 16 * j, left, 4, accumulate, b, relu);
            j += 4;
        } else {
            row_panels16(x, packed + j * k * 16, k, y + 16 * j, left, 1, accumulate, b, relu);
            j += 1;
        }
    }
}

AVX512 void nnb_row_times_matrix_avx512(const float *x, const float *b, long ldb, float *y, long n, long k, int accumulate,
                                        const float *bias, int relu) {
    // As the AVX2 kernel: whole rows of b, four at a time, added into y (in L1), so b streams once
    // in order; each y[j] one chain of FMAs in p's order, then the bias, then max(0, ·) as
    // `y < 0 ? 0 : y` (NaN stays NaN, −0 stays −0). The last n % 16 columns are masked lanes.
    __mmask16 tail = first_lanes(n % 16);
    long vector_n = n - n % 16;
    if (!accumulate)
        for (long j = 0; j < n; j++) y[j] = 0.0f;
    long p = 0;
    for (; p + 4 <= k; p += 4) {
        const float *b0 = b + p * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
        __m512 x0 = _mm512_set1_ps(x[p]), x1 = _mm512_set1_ps(x[p + 1]), x2 = _mm512_set1_ps(x[p + 2]), x3 = _mm512_set1_ps(x[p + 3]);
        for (long j = 0; j < vector_n; j += 16) {
            __m512 sum = _mm512_fmadd_ps(x0, _mm512_loadu_ps(b0 + j), _mm512_loadu_ps(y + j));
            sum = _mm512_fmadd_ps(x1, _mm512_loadu_ps(b1 + j), sum);
            sum = _mm512_fmadd_ps(x2, _mm512_loadu_ps(b2 + j), sum);
            _mm512_storeu_ps(y + j, _mm512_fmadd_ps(x3, _mm512_loadu_ps(b3 + j), sum));
        }
        if (tail) {
            long j = vector_n;
            __m512 sum = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(tail, b0 + j), _mm512_maskz_loadu_ps(tail, y + j));
            sum = _mm512_fmadd_ps(x1, _mm512_maskz_loadu_ps(tail, b1 + j), sum);
            sum = _mm512_fmadd_ps(x2, _mm512_maskz_loadu_ps(tail, b2 + j), sum);
            _mm512_mask_storeu_ps(y + j, tail, _mm512_fmadd_ps(x3, _mm512_maskz_loadu_ps(tail, b3 + j), sum));
        }
    }
    for (; p < k; p++) {
        __m512 xp = _mm512_set1_ps(x[p]);
        const float *row = b + p * ldb;
        for (long j = 0; j < n; j += 16) {
            __mmask16 mask = first_lanes(n - j);
            _mm512_mask_storeu_ps(y + j, mask, _mm512_fmadd_ps(xp, _mm512_maskz_loadu_ps(mask, row + j), _mm512_maskz_loadu_ps(mask, y + j)));
        }
    }
    if (bias)
        for (long j = 0; j < n; j += 16) {
            __mmask16 mask = first_lanes(n - j);
            _mm512_mask_storeu_ps(y + j, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, y + j), _mm512_maskz_loadu_ps(mask, bias + j)));
        }
    if (relu)
        for (long j = 0; j < n; j++) y[j] = y[j] < 0 ? 0.0f : y[j];
}

AVX512 void nnb_sgemm_packed_avx512(const float *a, long lda, const float *packed, float *c, long ldc, long m, long n, long k,
                                    int accumulate, const float *bias, int relu) {
    // (One row takes the AVX2 kernel's row-times-panels product at both levels: see
    // nnb_sgemm_packed in kernels.c. Here it would be a block of one row.)
    long panels = (n + 15) / 16, chunk = nnb_packed_k_chunk(n, k);
    // k-chunks outermost (one chunk unless the panels outgrow L2: nnb_packed_k_chunk), then row
    // blocks, then panels: a block of rows of a stays in L1 while the chunk's panels, in L2, pass
    // over it, and each panel is read from memory once per call. A chunk after the first adds to
    // the sums the one before stored; the bias and relu come with the last.
    for (long first = 0;;) {
        long length = k - first < chunk ? k - first : chunk, last = first + length >= k;
        const nnb_epilogue post = {bias, 0, 0, 0, 0, relu ? NNB_ACTIVATION_RELU : NNB_ACTIVATION_LINEAR};
        const runs layout = {1, 0, 1, 0, length};
        const chunk_product h = {&layout, packed + first * 16, k, n, panels, length, c, ldc, accumulate || first > 0, (int)last, &post};
        if (panels_first(m, panels, length)) {
            const float *all[PANELS_FIRST_ROWS];
            for (long r = 0; r < m; r++) all[r] = a + r * lda + first;
            for (long j = 0; j < panels; j += panels_next(panels - j))
                for (long i = 0, rows; i < m; i += rows) {
                    rows = rows_next(m - i, panels);
                    chunk_block(&h, i, rows, all + i, j);
                }
        } else for (long i = 0, rows; i < m; i += rows) {
            rows = rows_next(m - i, panels);
            const float *starts[SINGLE_ROWS];
            for (long r = 0; r < rows; r++) starts[r] = a + (i + r) * lda + first;
            for (long j = 0; j < panels; j += panels_next(panels - j)) chunk_block(&h, i, rows, starts, j);
        }
        if (last) break;
        first += length;
    }
}

long nnb_gemm_block_rows_avx512(void) { return MAX_ROWS; }

// Where the patches of consecutive output pixels start: the pixel's position, advanced one pixel
// at a time (no division per pixel).
typedef struct {
    const float *x;
    long image, row, column;
    long input_height, input_width, channels, output_height, output_width, stride_height, stride_width, offset;
} pixel_walk;

// The patch start of the walk's pixel; the walk moves on to the next pixel.
static INLINE const float *next_patch(pixel_walk *w) {
    const float *start = w->x + ((w->image * w->input_height + w->row * w->stride_height) * w->input_width
                                 + w->column * w->stride_width) * w->channels + w->offset;
    if (++w->column == w->output_width) {
        w->column = 0;
        if (++w->row == w->output_height) { w->row = 0; w->image++; }
    }
    return start;
}

AVX512 void nnb_conv_packed_avx512(const float *x, long input_height, long input_width, long channels,
                                   long output_height, long output_width, long stride_height, long stride_width,
                                   long row_runs, long row_step, long column_runs, long column_step, long span,
                                   const float *packed, long n, float *c, long ldc, long first, long count,
                                   const nnb_epilogue *post) {
    long k = row_runs * column_runs * span, panels = (n + 15) / 16;
    long per_image = output_height * output_width;
    const runs whole = {row_runs, row_step, column_runs, column_step, span};
    // k-chunks outermost when the call's panels outgrow L2 (nnb_patch_chunk), as in
    // nnb_sgemm_packed_avx512: each chunk of every panel is read from memory once per call, not
    // once per row block; the running sums wait in c between chunks, and `post` comes with the last.
    // The first row blocks of a chunk prefetch it and the next one (nnb_prefetch_distance): with 49
    // rows (ResNet50's last stage at batch 1) the panels streamed from memory at 5.9 GB/s
    // without, each line waiting on memory.
    for (long done = 0;;) {
        long length;
        patch_chunk part = nnb_patch_chunk(whole, n, done, &length);
        pixel_walk walk = {x, first / per_image, first % per_image / output_width, first % output_width, input_height,
                           input_width, channels, output_height, output_width, stride_height, stride_width, part.offset};
        const chunk_product h = {&part.layout, packed + part.k_first * 16, k, n, panels, length, c, ldc, part.k_first > 0, part.last, post};
        if (panels_first(count, panels, length)) {
            const float *all[PANELS_FIRST_ROWS];
            for (long q = 0; q < count; q++) all[q] = next_patch(&walk);
            for (long j = 0; j < panels; j += panels_next(panels - j))
                for (long i = 0, rows; i < count; i += rows) {
                    rows = rows_next(count - i, panels);
                    chunk_block(&h, i, rows, all + i, j);
                }
        } else for (long i = 0, rows; i < count; i += rows) {
            rows = rows_next(count - i, panels);
            const float *starts[SINGLE_ROWS];
            for (long q = 0; q < rows; q++) starts[q] = next_patch(&walk);
            for (long j = 0; j < panels; j += panels_next(panels - j)) chunk_block(&h, i, rows, starts, j);
        }
        if (part.last) break;
        done += length;
    }
}

#endif
