#ifndef NNBUILD_CKERNELS_H
#define NNBUILD_CKERNELS_H

/// Small dense kernels with an AVX2 + FMA path chosen at run time; the binary itself targets the
/// x86-64 baseline, so it still runs on CPUs without AVX2 (the callers fall back to OpenBLAS and
/// the Swift SIMD code there).

/// 1 when this CPU runs the AVX2 + FMA kernels below.
int nnb_has_avx2_fma(void);

/// c[m×n] = a[m×k] · b[k×n] (+ c when accumulate), every matrix row-major with its leading
/// dimension. For the small products of recurrent steps, where packing b on every call (as a
/// general GEMM does) costs as much as the arithmetic. Requires nnb_has_avx2_fma().
void nnb_sgemm_small(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                     long m, long n, long k, int accumulate);

/// In place: x = 1 / (1 + e^-x), and x = tanh(x) = 2σ(2x) − 1. Requires nnb_has_avx2_fma().
void nnb_sigmoid(float *x, long count);
void nnb_tanh(float *x, long count);

/// Packs b[k×n] (row-major, leading dimension ldb) into ceil(n/16) panels of k×16 floats each,
/// columns past n zero: the layout nnb_sgemm_packed reads. packed holds ceil(n/16)·16·k floats.
void nnb_pack_panels(const float *b, long ldb, long k, long n, float *packed);

/// c[m×n] = a[m×k] · b[k×n] (+ c when accumulate), b packed once by nnb_pack_panels (as a layer
/// does at load), with a 5×16 register block: a convolution's or a recurrent cell's weights are
/// reused on every call without being packed again. Requires nnb_has_avx2_fma().
void nnb_sgemm_packed(const float *a, long lda, const float *packed, float *c, long ldc, long m, long n, long k,
                      int accumulate);

/// One LSTM step's gate arithmetic for one row, in place, with Keras's default activations
/// (sigmoid gates, tanh cell): z holds the 4·units pre-activations in Keras's order i, f, c, o;
/// c' = σ(z_f)·c + σ(z_i)·tanh(z_c) and h' = σ(z_o)·tanh(c'). Requires nnb_has_avx2_fma().
void nnb_lstm_gates(const float *z, float *c, float *h, long units);

#endif
