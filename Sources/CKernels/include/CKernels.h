#ifndef NNBUILD_CKERNELS_H
#define NNBUILD_CKERNELS_H

/// Small dense kernels with an AVX2 + FMA path chosen at run time; the binary itself targets the
/// x86-64 baseline, so it still runs on CPUs without AVX2 (the callers fall back to OpenBLAS and
/// the Swift SIMD code there).

/// 1 when this CPU runs the AVX2 + FMA kernels below.
int nnb_has_avx2_fma(void);

/// Kernel levels: the portable code (OpenBLAS and Swift SIMD), AVX2 + FMA, and AVX-512 (F, BW,
/// VL and DQ).
#define NNB_KERNELS_BASELINE 0
#define NNB_KERNELS_AVX2 1
#define NNB_KERNELS_AVX512 2

/// The best level this CPU supports.
int nnb_cpu_kernel_level(void);

/// The level every kernel runs at: the CPU's best, or the lower one `NNBUILD_KERNELS` (baseline,
/// avx2, avx512) asks for. Read once per process.
int nnb_kernel_level(void);

/// For tests only: makes every kernel run at `level` from now on (to compare the paths' results
/// in one process), when this CPU supports it; returns the level then in force. Not for use while
/// another thread runs a kernel, and not by the library itself, whose level comes from the CPU and
/// `NNBUILD_KERNELS` alone.
int nnb_force_kernel_level(int level);

/// c[m×n] = a[m×k] · b[k×n] (+ c when accumulate), every matrix row-major with its leading
/// dimension. For the small products of recurrent steps, where packing b on every call (as a
/// general GEMM does) costs as much as the arithmetic. Requires nnb_has_avx2_fma().
void nnb_sgemm_small(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                     long m, long n, long k, int accumulate);

/// c[m×n] = a[m×k] · b[k×n] (+ c when accumulate), row-major with leading dimensions, on any CPU:
/// each element summed in p's order, a multiply then an add, so that a row's result never depends
/// on m or on which rows share the call (OpenBLAS picks kernels, and so summation orders, by the
/// matrices' sizes). The product of the baseline path.
void nnb_sgemm_portable(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                        long m, long n, long k, int accumulate);
/// In place: x = 1 / (1 + e^-x), and x = tanh(x) = 2σ(2x) − 1. Requires nnb_has_avx2_fma().
void nnb_sigmoid(float *x, long count);
void nnb_tanh(float *x, long count);

/// Packs b[k×n] (row-major, leading dimension ldb) into ceil(n/16) panels of k×16 floats each,
/// columns past n zero: the layout nnb_sgemm_packed reads. packed holds ceil(n/16)·16·k floats.
void nnb_pack_panels(const float *b, long ldb, long k, long n, float *packed);

/// c[m×n] = a[m×k] · b[k×n] (+ c when accumulate) (+ bias[n] when bias is not NULL), then
/// max(·, 0) when relu; b packed once by nnb_pack_panels (as a layer does at load). A register
/// block (5×16 on AVX2, 8×32 on AVX-512) for m > 1, over k in chunks when the panels outgrow L2,
/// and a streaming row-times-panels product for m = 1: a convolution's, a
/// Dense layer's or a recurrent cell's weights are reused on every call without being packed
/// again. n may be fewer columns than were packed (the first panels only). Requires
/// nnb_has_avx2_fma().
void nnb_sgemm_packed(const float *a, long lda, const float *packed, float *c, long ldc, long m, long n, long k,
                      int accumulate, const float *bias, int relu);

/// y[n] = x[k] · b[k×n] (row-major, leading dimension ldb) (+ y when accumulate) (+ bias) then
/// max(·, 0) when relu: one row times a matrix read in place, as fast as the packed form (the
/// product streams the matrix either way), so a layer need not pack a large kernel for batch-1
/// inference. Requires nnb_has_avx2_fma().
void nnb_row_times_matrix(const float *x, const float *b, long ldb, float *y, long n, long k, int accumulate,
                          const float *bias, int relu);

/// A convolution as an implicit GEMM: no im2col copy, each output pixel's patch is read where it
/// lies in the input. c[count × n] (row stride ldc) = output pixels first..<first+count (flat over
/// image, output row, output column) of x convolved with a kernel packed by nnb_pack_panels
/// (k = row_runs·column_runs·span rows), plus bias[n] when bias is not NULL, then max(·, 0) when
/// relu. x is [images, input_height, input_width, channels], padded so that every tap lies inside
/// it and offset to the channel group's first channel; output pixel (row, column) has its window
/// corner at input (row·stride_height, column·stride_width), and its patch is row_runs ×
/// column_runs runs of span contiguous floats, run (r, q) at r·row_step + q·column_step floats from
/// that corner. Requires nnb_has_avx2_fma().
void nnb_conv_packed(const float *x, long input_height, long input_width, long channels,
                     long output_height, long output_width, long stride_height, long stride_width,
                     long row_runs, long row_step, long column_runs, long column_step, long span,
                     const float *packed, long n, float *c, long ldc, long first, long count,
                     const float *bias, int relu);

/// out[c] = the max over a window of rows × columns cells of `channels` floats each, cell (r, q)
/// at corner + r·row_step + q·column_step, for every channel c; NaN cells are passed over, and an
/// empty window gives −∞. Requires nnb_has_avx2_fma().
void nnb_max_window(const float *corner, long rows, long row_step, long columns, long column_step, long channels, float *out);

/// Winograd F(2×2, 3×3), for 3×3 convolutions at stride 1 with at least a few channels.
/// nnb_winograd_kernel transforms a kernel [3][3][channels][filters] into 16 matrices
/// [16][channels][filters] (U = G g Gᵀ, computed in double); the caller packs each with
/// nnb_pack_panels into ceil(filters/16)·16·channels floats, one after another.
void nnb_winograd_kernel(const float *kernel, long channels, long filters, float *transformed);

/// y = the convolution of x with that packed kernel, plus bias when not NULL, then max(·, 0) when
/// relu, for 2×2 output tiles first..<first+count (flat over image, tile row, tile column; a tile
/// row covers output rows 2r and 2r+1, the last one half when the output height is odd). x is
/// [images, input_height, input_width, channels], padded so that output pixel (r, c) has its
/// window corner at input (r, c) and every tile's 4×4 window lies inside: input_height ≥
/// 2·ceil(output_height/2) + 2, likewise the width. y is [images, output_height, output_width,
/// filters]. The products run on nnb_sgemm_packed, so this requires nnb_has_avx2_fma() too.
void nnb_winograd_3x3(const float *x, long input_height, long input_width, long channels,
                      long output_height, long output_width, const float *packed, long filters,
                      const float *bias, int relu, float *y, long first, long count);

/// One LSTM step's gate arithmetic for one row, in place, with Keras's default activations
/// (sigmoid gates, tanh cell): z holds the 4·units pre-activations in Keras's order i, f, c, o;
/// c' = σ(z_f)·c + σ(z_i)·tanh(z_c) and h' = σ(z_o)·tanh(c'). z's last quarter is overwritten
/// (with σ(z_o)). Requires nnb_has_avx2_fma().
void nnb_lstm_gates(float *z, float *c, float *h, long units);

/// A task of nnb_parallel_for: runs item `index` of a job.
typedef void (*nnb_task)(void *context, long index);

/// Runs task(context, i) for every i in 0..<count on up to `threads` threads (this one and the
/// pool's workers, at most one per core), and returns when all are done. Each thread takes the
/// next item no one has started, so a worker that starts late costs only the items it takes; the
/// caller runs whatever is left. The workers spin briefly between jobs, then sleep. A call made
/// while another job runs (from another thread, or from inside a task) runs its items in order on
/// the caller.
void nnb_parallel_for(long count, long threads, nnb_task task, void *context);

/// The threads nnb_parallel_for can use at most: the workers plus the caller.
long nnb_pool_threads(void);

#endif
