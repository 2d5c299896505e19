// blas.h — the one cuBLAS wrapper: row-major GEMMs written once in terms of cuBLAS's column-major.
//
// Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C is, read column-major, C^T = op(B)^T
// op(A)^T: cuBLAS gets B first, with M and N swapped. Every GEMM of the backend goes through here.
//
// Precision (GemmPrecision): Float32 keeps cuBLAS's default math (no TF32; exact float32 as the
// CPU); TF32 lets float32 GEMMs use TF32 tensor cores; BF16 rounds the operands of the linear
// layers' GEMMs to bf16 and accumulates in float32 into a float32 result (weights stay float32 as
// master copies). Float64 GEMMs are always exact.
//
// Determinism: cuBLAS picks its algorithm from the shape, the math mode and the workspace; the
// workspace is fixed (set once here) and nothing else varies, so a recomputed GEMM of the same
// shape gives the forward's bits — reversible layers and checkpointing depend on it.
#pragma once
#include <cublas_v2.h>

#include <cstddef>

#include "gemm_precision.h"
#include "scratch.h"

namespace meft::cuda {

class Blas {
public:
    explicit Blas(GemmPrecision precision);
    ~Blas();
    Blas(const Blas&) = delete;
    Blas& operator=(const Blas&) = delete;

    // Row-major, leading dimensions in elements. T is float or double.
    template <typename T>
    void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const T* A, int lda, const T* B, int ldb,
              double beta, T* C, int ldc);
    // The same GEMM for `count` operand triples (device arrays of pointers), e.g. every (example,
    // head) of attention. Always in the compute dtype (BF16 applies to the linear layers only).
    template <typename T>
    void gemm_batched(bool ta, bool tb, int M, int N, int K, double alpha, const T* const* A, int lda,
                      const T* const* B, int ldb, double beta, T* const* C, int ldc, int count);

    GemmPrecision precision() const { return precision_; }
    // Device bytes of the BF16 operand copies so far (the fixed cuBLAS workspace is not counted:
    // it is taken when the backend starts, before any free-memory check).
    std::size_t scratch_bytes() const { return bf16_.bytes(); }

private:
    cublasHandle_t handle_ = nullptr;
    GemmPrecision precision_;
    void* workspace_ = nullptr;
    Scratch bf16_;  // operand copies for BF16 GEMMs
};

}  // namespace meft::cuda
