// The AVX-512 (F, BW, VL, DQ) GEMM-family kernels of kernels_avx512.c, private to CKernels: the
// public entry points in kernels.c call them when nnb_kernel_level() >= NNB_KERNELS_AVX512. Each
// has its public twin's signature and contract, and gives the AVX2 kernel's bits: every element is
// one chain of FMAs in k's order from c's old value (or 0), then the same epilogue.
#ifndef NNBUILD_GEMM_AVX512_H
#define NNBUILD_GEMM_AVX512_H

#if defined(__x86_64__) || defined(_M_X64)
void nnb_sgemm_small_avx512(const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                            long m, long n, long k, int accumulate);
void nnb_sgemm_packed_avx512(const float *a, long lda, const float *packed, float *c, long ldc, long m, long n, long k,
                             int accumulate, const float *bias, int relu);
void nnb_row_times_matrix_avx512(const float *x, const float *b, long ldb, float *y, long n, long k, int accumulate,
                                 const float *bias, int relu);
void nnb_conv_packed_avx512(const float *x, long input_height, long input_width, long channels,
                            long output_height, long output_width, long stride_height, long stride_width,
                            long row_runs, long row_step, long column_runs, long column_step, long span,
                            const float *packed, long n, float *c, long ldc, long first, long count,
                            const float *bias, int relu);
#endif

/// The k-chunk of the packed product (both paths) for a product of `n` columns and inner
/// dimension `k`: k itself when the panels fit in L2 anyway, else a length whose panel slices
/// (chunk × ceil(n/16)·16 floats) stay there while every row block of the call passes over them.
/// Each element is still one chain of FMAs in k's order: between chunks its running sum is
/// stored in c and read back, as a float, which is exactly what the register held.
long nnb_packed_k_chunk(long n, long k);

#endif
