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
/// nnb_pack_panels for rows first..<first+count of b only, each into its place among the k rows
/// of every panel: a large matrix packed a block of rows at a time.
void nnb_pack_panel_rows(const float *b, long ldb, long k, long first, long count, long n, float *packed);

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

/// The activations the convolutions apply in their store (nnb_epilogue, nnb_depthwise): none,
/// max(·, 0), min(max(·, 0), 6); NaN passes through each.
#define NNB_ACTIVATION_LINEAR 0
#define NNB_ACTIVATION_RELU 1
#define NNB_ACTIVATION_RELU6 2

/// What a convolution does to each result c[i][j] before storing it, in this order, each step one
/// rounded float operation, as the layers it stands for compute it apart:
/// 1. + bias[j] when bias is not NULL (a missing bias adds nothing: a sum of products that starts
///    from +0 never ends in −0 under round-to-nearest, so x + 0 would give x's own bits);
/// 2. · scale[j], then + shift[j], when scale is not NULL (a BatchNormalization at inference);
/// 3. + addend[i·addend_stride + j] when addend is not NULL (a residual Add of two terms);
/// 4. the activation: max(0, x) (NaN stays NaN), and for RELU6 then min(6, x).
/// Every pointer is at the call's first column (and addend at its first output row).
typedef struct {
    const float *bias, *scale, *shift, *addend;
    long addend_stride;
    int activation;
} nnb_epilogue;

/// `post` for the results from row `row` and column `column` of its product on (NULL: nothing).
static inline nnb_epilogue nnb_epilogue_at(const nnb_epilogue *post, long row, long column) {
    nnb_epilogue shifted = {0, 0, 0, 0, 0, NNB_ACTIVATION_LINEAR};
    if (!post) return shifted;
    shifted = *post;
    if (shifted.bias) shifted.bias += column;
    if (shifted.scale) shifted.scale += column;
    if (shifted.shift) shifted.shift += column;
    if (shifted.addend) shifted.addend += row * shifted.addend_stride + column;
    return shifted;
}

/// A convolution as an implicit GEMM: no im2col copy, each output pixel's patch is read where it
/// lies in the input. c[count × n] (row stride ldc) = output pixels first..<first+count (flat over
/// image, output row, output column) of x convolved with a kernel packed by nnb_pack_panels
/// (k = row_runs·column_runs·span rows), then `post` (NULL: nothing). x is [images, input_height,
/// input_width, channels], padded so that every tap lies inside it and offset to the channel
/// group's first channel; output pixel (row, column) has its window corner at input
/// (row·stride_height, column·stride_width), and its patch is row_runs × column_runs runs of span
/// contiguous floats, run (r, q) at r·row_step + q·column_step floats from that corner.
/// `packed` may start at any panel of a larger packed kernel (its row length k is the same), so a
/// call can compute a range of 16-column panels. Each element is one chain of FMAs in k's order,
/// whatever range or level computes it. `post`'s addend may be c itself (the same elements, at
/// the same stride) when k is one chunk (nnb_packed_k_chunk(n, k) >= k): each block's addend is
/// read in the store, right before the sums are written over it; with more chunks the running
/// sums wait in c between chunks. Requires nnb_has_avx2_fma().
void nnb_conv_packed(const float *x, long input_height, long input_width, long channels,
                     long output_height, long output_width, long stride_height, long stride_width,
                     long row_runs, long row_step, long column_runs, long column_step, long span,
                     const float *packed, long n, float *c, long ldc, long first, long count,
                     const nnb_epilogue *post);

/// The k-chunk of the packed product (both paths) for a product of `n` columns and inner
/// dimension `k`: k itself when the panels fit in L2 anyway, else a length whose panel slices
/// (chunk × ceil(n/16)·16 floats) stay there while every row block of the call passes over them.
/// Each element is still one chain of FMAs in k's order: between chunks its running sum is
/// stored in c and read back, as a float, which is exactly what the register held. A product of
/// fewer columns never takes more chunks.
long nnb_packed_k_chunk(long n, long k);

/// The rows of the register block the GEMM kernels of the current level compute at once: a part
/// of a product whose row count is a multiple of it runs no partial block.
long nnb_gemm_block_rows(void);

/// out[c] = the max over a window of rows × columns cells of `channels` floats each, cell (r, q)
/// at corner + r·row_step + q·column_step, for every channel c; NaN cells are passed over, and an
/// empty window gives −∞. Requires nnb_has_avx2_fma().
void nnb_max_window(const float *corner, long rows, long row_step, long columns, long column_step, long channels, float *out);

/// One output row of a max pooling: out[j·channels + c] = nnb_max_window over `rows` rows (row_step
/// apart) and column_counts[j] cells (channels apart) from row + column_offsets[j], for each of
/// the out_columns windows. Requires nnb_has_avx2_fma().
void nnb_max_pool_row(const float *row, long rows, long row_step, const long *column_offsets, const long *column_counts,
                      long out_columns, long channels, float *out);

/// Winograd F(2×2, 3×3), for 3×3 convolutions at stride 1 with at least a few channels.
/// The kernel is kept as it came, 16 filters a panel: nnb_winograd_taps copies a kernel
/// [3][3][channels][filters] into taps [ceil(filters/16)][channels][9][16] (zeros past the last
/// filter). nnb_winograd_transform computes U = G g Gᵀ (in double, rounded to float) for panels
/// panel_first..<panel_end into `packed`, the layout nnb_winograd_3x3 reads: 16 matrices of
/// ceil(filters/16)·16·channels floats, each in 16-column panels as nnb_pack_panels lays them out,
/// nnb_winograd_plane(channels, filters) floats apart (16 more: a cache line between them).
/// Requires nnb_has_avx2_fma().
long nnb_winograd_plane(long channels, long filters);
void nnb_winograd_taps(const float *kernel, long channels, long filters, float *taps);
void nnb_winograd_transform(const float *taps, long channels, long filters, long panel_first, long panel_end, float *packed);

/// The most tiles a block of nnb_winograd_3x3 takes from a kernel in taps form.
#define NNB_WINOGRAD_TAPS_BLOCK 64

/// y = the convolution of x with that packed kernel (or, with packed NULL, with the kernel in taps
/// form, each panel transformed in the call right before its products: a block of up to
/// NNB_WINOGRAD_TAPS_BLOCK tiles transforms each of its filters' panels once, into a buffer of one
/// panel), then `post` (NULL: nothing; its addend rows are
/// output pixels, flat over image, row and column), for 2×2 output tiles first..<first+count (flat
/// over image, tile row, tile column; a tile row covers output rows 2r and 2r+1, the last one half
/// when the output height is odd) and filters filter_first..<filter_first+filter_count
/// (filter_first a multiple of 16; `post`'s pointers at filter 0). x is [images, input_height,
/// input_width, channels], read in place: output pixel (r, c) has its window corner at input
/// (r − pad_top, c − pad_left), and taps outside the input are zeros (a tile whose 4×4 window
/// reaches outside, the image's border and a last tile past an odd output, is gathered into a
/// zeroed buffer first), so no padded copy is made. y is [images, output_height, output_width,
/// filters]. The products run on nnb_sgemm_packed, so this requires nnb_has_avx2_fma() too.
void nnb_winograd_3x3(const float *x, long input_height, long input_width, long pad_top, long pad_left, long channels,
                      long output_height, long output_width, const float *packed, const float *taps, long filters,
                      long filter_first, long filter_count, const nnb_epilogue *post, float *y, long first, long count);

/// nnb_winograd_3x3 followed by a 2×2 max pooling at stride 2 in the same pass: each tile's (up to)
/// four outputs, after `post` (required: the pooling reads the layer's final values), go as their
/// max to pooled pixel (tile row, tile column) of `pooled` [images, pooled_height, pooled_width,
/// filters], NaN passed over as nnb_max_window does; tiles at or past pooled_height or
/// pooled_width are dropped ("valid" pooling of an odd size). The convolution's own output is not
/// written. Tiles, filters and threads split as for nnb_winograd_3x3.
void nnb_winograd_3x3_pooled(const float *x, long input_height, long input_width, long pad_top, long pad_left, long channels,
                             long output_height, long output_width, const float *packed, const float *taps, long filters,
                             long filter_first, long filter_count, const nnb_epilogue *post, float *pooled,
                             long pooled_height, long pooled_width, long first, long count);

/// One LSTM step's gate arithmetic for one row, in place, with Keras's default activations
/// (sigmoid gates, tanh cell): z holds the 4·units pre-activations in Keras's order i, f, c, o;
/// c' = σ(z_f)·c + σ(z_i)·tanh(z_c) and h' = σ(z_o)·tanh(c'). z's last quarter is overwritten
/// (with σ(z_o)). Requires nnb_has_avx2_fma().
void nnb_lstm_gates(float *z, float *c, float *h, long units);

/// nnb_lstm_gates on `count` of a row's units, the same operations on each unit: z points at the
/// first unit's i (its f, c and o at + stride, + 2·stride and + 3·stride, stride being the
/// layer's units), c_in at its old cell state; the new cell and hidden states go to c_out and
/// h_out (c_out may be c_in; another buffer when other threads still read the old states).
/// Requires nnb_has_avx2_fma().
void nnb_lstm_gates_range(float *z, const float *c_in, float *c_out, float *h_out, long stride, long count);

/// One GRU step's gate arithmetic for one row, in place, for reset_after=True with Keras's
/// default activations (sigmoid gates, tanh candidate): x holds the input projections (bias
/// included) of the gates z, r, h (3·units) and r the recurrent ones h·U + recurrent bias (3·units);
/// z = σ(x_z + r_z), ρ = σ(x_r + r_r), ĥ = tanh(x_h + ρ·r_h) (one FMA), h' = ĥ + z·(h − ĥ) (one
/// FMA; Keras's z·h + (1 − z)·ĥ). x's z and h thirds are overwritten (with z and ĥ). Requires
/// nnb_has_avx2_fma().
void nnb_gru_gates(float *x, const float *r, float *h, long units);

/// nnb_gru_gates on `count` of a row's units, the same operations on each unit: x and r point at
/// the first unit's z (its r and h at + stride and + 2·stride, stride being the layer's units),
/// h_in at its old state and h_out where its new state goes (h_in itself, or another buffer when
/// other threads still read the old state). Requires nnb_has_avx2_fma().
void nnb_gru_gates_range(float *x, const float *r, const float *h_in, float *h_out, long stride, long count);

/// In place: x = gelu(x) = x/2 · (1 + erf(x/√2)) (Keras's gelu, approximate=False), through
/// Numerical Recipes' erfc (relative error under 1.2e-7), as x/2 · erfc(−x/√2) below zero so
/// that the small side keeps its relative accuracy. Requires nnb_has_avx2_fma().
void nnb_gelu(float *x, long count);

/// In place, each of `rows` rows of `length` floats: softmax, e^(x − m) / Σ e^(x − m), or with
/// log set log-softmax, x − m − log Σ e^(x − m), where m is the row's largest value (NaN passed
/// over) and Σ is summed in double in a fixed order; a row whose m is not finite runs
/// nnb_softmax_row_exact. Requires nnb_has_avx2_fma().
void nnb_softmax(float *x, long rows, long length, int log);

/// In place, each of `rows` rows of `length` floats: (x − mean) · (1/√(variance + ε)) · γ + β
/// (γ, β: `length` floats each, or NULL to leave the step out), the row's mean and variance in
/// double; the same bits on kernel path `level` (NNB_KERNELS_*, capped at the CPU's) and every
/// other (normalization.c says how). Any CPU.
void nnb_layer_norm(float *x, long rows, long length, float epsilon, const float *gamma, const float *beta, int level);

/// y[image, c] = the mean over the `steps` steps of sample `image` of x[image, step, c], for
/// `batch` samples of steps × channels floats: summed in double in step order into `sums` (the
/// caller's scratch of `channels` doubles), skipping the steps whose `mask` flag (batch × steps
/// bytes, 0 or 1; NULL: none) is 0, divided by the steps counted (0/0 is NaN, as the formula
/// gives). The same bits on every kernel path (`level` capped at the CPU's). Returns 0, or -1
/// for a negative step count.
int nnb_global_average(const float *x, long batch, long steps, long channels, const unsigned char *mask, float *y, double *sums,
                       int level);

/// One row of nnb_softmax by the scalar formula (libm's expf, the sum in double), where exp's
/// clamp in the vector kernels would be wrong: a row whose largest value is ±∞ or that holds no
/// number (there the peak counts as 0, so e^∞ = ∞ and e^−∞ = 0 as Keras has them). Any CPU.
void nnb_softmax_row_exact(float *x, long length, int log);


/// The AVX-512 bodies of nnb_sigmoid, nnb_tanh, nnb_lstm_gates, nnb_gru_gates, nnb_gelu,
/// nnb_softmax and nnb_max_window (kernels_avx512_elementwise.c), bit for bit their AVX2 results 16 lanes at a
/// time. Call the entry points above, which choose; these require nnb_cpu_kernel_level() ==
/// NNB_KERNELS_AVX512.
void nnb_sigmoid_avx512(float *x, long count);
void nnb_tanh_avx512(float *x, long count);
void nnb_lstm_gates_avx512(float *z, const float *c_in, float *c_out, float *h_out, long stride, long count);
void nnb_gru_gates_avx512(float *x, const float *r, const float *h_in, float *h_out, long stride, long count);
void nnb_gelu_avx512(float *x, long count);
void nnb_softmax_avx512(float *x, long rows, long length, int log);
void nnb_max_window_avx512(const float *corner, long rows, long row_step, long columns, long column_step, long channels, float *out);

/// Depthwise convolution, channels last, computed directly (no padded copy, no im2col): output
/// rows first..<first+count (flat over image and output row) of
///   s[image, row, column, j = c·multiplier + k] = bias[j] (0 when bias is NULL) + Σ over in-bounds
///     taps (r, q), r then q ascending, of x[image, row·stride_height − pad_top + r·dilation_height,
///     column·stride_width − pad_left + q·dilation_width, c] · kernel[r, q, c, k]
///   y[..., j] = activation(s · scale[j] + shift[j]), or activation(s) when scale or shift is NULL
/// x is [images, input_height, input_width, channels], kernel [kernel_height, kernel_width,
/// channels, multiplier], y [images, output_height, output_width, channels·multiplier] (which
/// must fit an int). Each element's sum runs in that order as FMAs whatever rows a call covers, so
/// a row's result never depends on the batch. level: NNB_KERNELS_AVX2 or NNB_KERNELS_AVX512
/// (lowered to what the CPU has; baseline runs a scalar loop in the same order).
void nnb_depthwise(const float *x, long input_height, long input_width, long channels, long multiplier,
                   const float *kernel, long kernel_height, long kernel_width,
                   long stride_height, long stride_width, long dilation_height, long dilation_width,
                   long pad_top, long pad_left, long output_height, long output_width,
                   const float *bias, const float *scale, const float *shift, int activation,
                   float *y, long first, long count, int level);

/// How many parts nnb_transpose cuts `count` (rows × columns) matrices into: a band of rows of one matrix each.
long nnb_transpose_parts(long count, long rows);

/// Parts first..<first+parts (nnb_transpose_parts) of `count` row-major (rows × columns) matrices
/// x, each written transposed, (columns × rows), to the same place in y; in L1-sized tiles, with 8×8
/// register blocks on kernel path `level` NNB_KERNELS_AVX2 and above. The same bits on every path.
void nnb_transpose(const float *x, long rows, long columns, float *y, long first, long parts, int level);

/// A task of nnb_parallel_for: runs item `index` of a job.
typedef void (*nnb_task)(void *context, long index);

/// Runs task(context, i) for every i in 0..<count on up to `threads` threads (this one and the
/// pool's workers, at most one per core), and returns when all are done. Each thread takes the
/// next item no one has started, so a worker that starts late costs only the items it takes; the
/// caller runs whatever is left. The workers spin briefly between jobs, then sleep. A call made
/// while another job runs (from another thread, or from inside a task) runs its items in order on
/// the caller.
void nnb_parallel_for(long count, long threads, nnb_task task, void *context);

/// nnb_parallel_for with each item's weight (its work, in any unit; `weights` holds `count`),
/// for items cut by nnb_pool_share: a job of one item per thread in which each thread ran its own
/// item is a sample of the threads' speeds, which the next shares follow.
void nnb_parallel_for_weighted(long count, long threads, nnb_task task, void *context, const double *weights);

/// The share of a job's work to give thread `seat` of `seats` (0 the caller; the pool's seat i + 1
/// its worker i) when cutting it into one part per thread: the threads' speeds as the weighed
/// jobs measured them (see pool.c), equal before any. The shares of seats 0..<seats sum to 1.
double nnb_pool_share(long seat, long seats);

/// A part of a step of nnb_parallel_steps, and what the caller runs between steps.
typedef void (*nnb_step_task)(void *context, long step, long part);
typedef void (*nnb_step_end)(void *context, long step);

/// For step in 0..<steps: task(context, step, part) for every part in 0..<parts, on this thread
/// and (threads > 1) one of the pool's workers, then end(context, step) (if not NULL) on this
/// thread alone; a step's parts start only after the previous step's end has returned. For a
/// recurrence whose steps are too short (about a microsecond) for a job each: a worker joins
/// once and claims parts round after round. Parts no worker has claimed run on the caller, so a
/// worker that starts late costs nothing; one put off in the middle of a part closes the team
/// (the caller runs the remaining steps alone) and backs the pool off, as a stall in
/// nnb_parallel_for does. Alone (threads 1, another job running, backing off) it runs the
/// parts in order. With `tuning` (one per call site, zeroed at first, used only under the pool's
/// lock), it also times the seconds per step of the team and of the caller alone, and runs the
/// faster, timing the other again now and then (see pool.c); `key` names what the timings are
/// for (calls of another key start them again). Returns how many parts a worker ran.
typedef struct {
    double team_seconds_per_step, alone_seconds_per_step, probe_after;
    long key;
} nnb_step_tuning;
long nnb_parallel_steps(long steps, long parts, long threads, nnb_step_task task, nnb_step_end end, void *context,
                        nnb_step_tuning *tuning, long key);

/// 1 when the pool's caller and its first worker have lately sat far apart (a cache line's round
/// trip between them over 270 ns, the smallest of the last window of samples: different parts
/// of the host under a VM's two vCPUs), 0 otherwise (see pool.c). There, a thread reading what
/// the other wrote pays 350 ns or more per line, and a convolution that reads a zero-padded copy
/// of its input stays on one thread below 8 M multiply-adds.
int nnb_pool_far_apart(void);

/// The round trip (seconds) behind nnb_pool_far_apart: the smallest of the last complete window
/// of samples, or 0 before one has completed.
double nnb_pool_round_trip(void);

/// The threads nnb_parallel_for can use at most: the workers plus the caller.
long nnb_pool_threads(void);

/// 1 while the pool runs jobs on the caller alone: after a stall, or while other runnable threads
/// (/proc/loadavg) leave it one core (see pool.c); 0 otherwise. A kernel splitting work for
/// threads may as well not split it then. Asking also brings the count of runnable threads up to
/// date (at most every 4 ms).
int nnb_pool_backing_off(void);

/// Whether OpenBLAS could be loaded (libopenblas.so.0, on first call; blas.c): 1 or 0.
int nnb_blas_available(void);

/// c[m×n] = a[m×k] · b (row-major; b [k×n], or [n×k] when transpose_b) + beta·c, by OpenBLAS's
/// cblas_sgemm on one thread, loaded on first use. Returns 0, doing nothing, when OpenBLAS
/// cannot be loaded.
int nnb_blas_sgemm(int transpose_b, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                   float beta, float *c, long ldc);

#endif
