// Private to CKernels: what the GEMM-family kernels share.
// - The AVX-512 (F, BW, VL, DQ) kernels of kernels_avx512.c: the public entry points in kernels.c
//   call them when nnb_kernel_level() >= NNB_KERNELS_AVX512. Each has its public twin's signature
//   and contract, and gives the AVX2 kernel's bits: every element is one chain of FMAs in k's
//   order from c's old value (or 0), then the same epilogue.
// - The k-chunking of products and patches, and the epilogue's helpers, one copy for every path.
#ifndef NNBUILD_GEMM_AVX512_H
#define NNBUILD_GEMM_AVX512_H

#include "CKernels.h"

#if defined(__x86_64__) || defined(_M_X64)
void nnb_sgemm_small_avx512(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                            long m, long n, long k, int accumulate);
void nnb_sgemm_packed_avx512(const float *a, long lda, const float *packed, float *c, long ldc, long m, long n, long k,
                             int accumulate, const float *bias, int relu);
void nnb_row_times_panels_avx512(const float *x, const float *packed, float *y, long n, long k, int accumulate,
                                 const float *bias, int relu);
int nnb_rows_in_16_lanes(void);
void nnb_row_times_matrix_avx512(const float *x, const float *b, long ldb, float *y, long n, long k, int accumulate,
                                 const float *bias, int relu);
void nnb_conv_packed_avx512(const float *x, long input_height, long input_width, long channels,
                            long output_height, long output_width, long stride_height, long stride_width,
                            long row_runs, long row_step, long column_runs, long column_step, long span,
                            const float *packed, long n, float *c, long ldc, long first, long count,
                            const nnb_epilogue *post);
long nnb_gemm_block_rows_avx512(void);
#endif

// Where the k values of one row of a lie: `rows` × `columns` runs of `span` contiguous floats,
// run (r, q) starting r·row_step + q·column_step floats after the row's start. A plain matrix row
// is one run of k; a convolution's patch, read straight from its (padded) input, is kh runs of
// kw·C (or kh·kw runs of C/groups when taps are dilated or grouped).
typedef struct { long rows, row_step, columns, column_step, span; } runs;

// One k-chunk of a convolution's patch (as nnb_packed_k_chunk chunks a product): its layout, where
// it starts in the patch (floats from the patch's corner) and in k, and whether it is the last.
typedef struct { runs layout; long offset, k_first; int last; } patch_chunk;

// The chunk that starts `done` floats into k for a patch of layout `whole` in a product of n
// columns; the next starts *length floats later. Whole kernel rows when a kernel row is one run no
// longer than a chunk, else a piece of one run (a 3×3 kernel over 512 channels has runs of 1,536
// floats, and a chunk of 256 keeps its panel slices in L2: whole runs of 3 MB did not, and every
// row block read them again from L3); the whole patch when it fits in one chunk.
static inline patch_chunk nnb_patch_chunk(runs whole, long n, long done, long *length) {
    long k = whole.rows * whole.columns * whole.span, chunk = nnb_packed_k_chunk(n, k);
    patch_chunk part = {whole, 0, done, 1};
    if (chunk >= k) {
        *length = k;
        return part;
    }
    if (whole.columns == 1 && chunk >= whole.span) {
        long first = done / whole.span, rows = chunk / whole.span;
        if (rows > whole.rows - first) rows = whole.rows - first;
        part.layout.rows = rows;
        part.offset = first * whole.row_step;
        *length = rows * whole.span;
    } else {
        long run = done / whole.span, within = done % whole.span, pieces = whole.span - within < chunk ? whole.span - within : chunk;
        part.layout = (runs){1, 0, 1, 0, pieces};
        part.offset = run / whole.columns * whole.row_step + run % whole.columns * whole.column_step + within;
        *length = pieces;
    }
    part.last = done + *length >= k;
    return part;
}

// How far ahead (floats, in each panel) the row block starting at row `first` of a k-chunk of
// `length` prefetches the panels into L2, for blocks of `block_rows` rows: the first block, which
// reads the chunk from memory, 64 k-steps ahead of itself (4 KB a panel: the hardware prefetchers
// did not keep up with 32 interleaved panel streams); the second, while the chunk is in L2, the
// next chunk (`length` further on), so that the next chunk's first block finds it there. 0: none.
static inline long nnb_prefetch_distance(long first, long block_rows, int last_chunk, long length) {
    // (A short product, a Winograd block's k of 32 or 64 channels, has nothing 64 steps ahead.)
    if (first == 0) return length > 128 ? 64 * 16 : 0;
    return first <= block_rows && !last_chunk ? length * 16 : 0;
}

// Whether `post` changes anything (a block without one is stored as summed).
static inline int nnb_epilogue_acts(const nnb_epilogue *post) {
    return post->bias || post->scale || post->addend || post->activation != NNB_ACTIVATION_LINEAR;
}

// The epilogue on one value, in its order (the scalar twin of the vector kernels' stores).
static inline float nnb_epilogue_one(float v, const nnb_epilogue *post, long row, long column) {
#pragma clang fp contract(off)
    if (post->bias) v = v + post->bias[column];
    if (post->scale) v = v * post->scale[column] + post->shift[column];
    if (post->addend) v = v + post->addend[row * post->addend_stride + column];
    if (post->activation != NNB_ACTIVATION_LINEAR) v = v < 0 ? 0.0f : v;
    if (post->activation == NNB_ACTIVATION_RELU6) v = 6.0f < v ? 6.0f : v;
    return v;
}

#endif
