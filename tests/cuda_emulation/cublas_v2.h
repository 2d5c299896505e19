// cublas_v2.h (host emulation) — the cuBLAS calls of kernels/blas.cu on column-major CBLAS, with
// cuBLAS's argument conventions, so the backend's row-major derivation is exercised as written.
#pragma once
#include <cblas.h>

#include <vector>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 };
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 };
enum cudaDataType { CUDA_R_32F = 0, CUDA_R_16BF = 14 };
enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68 };
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };
struct cublasContext {};
using cublasHandle_t = cublasContext*;

inline const char* cublasGetStatusString(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE";
}
inline cublasStatus_t cublasCreate(cublasHandle_t* h) {
    *h = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetWorkspace(cublasHandle_t, void*, std::size_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

namespace meft::emu {
inline CBLAS_TRANSPOSE trans(cublasOperation_t op) { return op == CUBLAS_OP_T ? CblasTrans : CblasNoTrans; }
// cuBLAS checks leading dimensions against the stored (column-major) operand; so do we, so a
// wrong derivation fails here as it would on the GPU.
inline bool lds_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb, int ldc) {
    const int rows_a = ta == CUBLAS_OP_N ? m : k, rows_b = tb == CUBLAS_OP_N ? k : n;
    return m >= 0 && n >= 0 && k >= 0 && lda >= std::max(1, rows_a) && ldb >= std::max(1, rows_b) &&
           ldc >= std::max(1, m);
}
}  // namespace meft::emu

inline cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const float* alpha, const float* A, int lda, const float* B, int ldb,
                                  const float* beta, float* C, int ldc) {
    if (!meft::emu::lds_ok(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    cblas_sgemm(CblasColMajor, meft::emu::trans(ta), meft::emu::trans(tb), m, n, k, *alpha, A, lda, B, ldb, *beta, C,
                ldc);
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const double* alpha, const double* A, int lda, const double* B, int ldb,
                                  const double* beta, double* C, int ldc) {
    if (!meft::emu::lds_ok(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    cblas_dgemm(CblasColMajor, meft::emu::trans(ta), meft::emu::trans(tb), m, n, k, *alpha, A, lda, B, ldb, *beta, C,
                ldc);
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSgemmBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float* alpha, const float* const A[], int lda,
                                         const float* const B[], int ldb, const float* beta, float* const C[], int ldc,
                                         int count) {
    for (int i = 0; i < count; ++i)
        if (auto s = cublasSgemm(h, ta, tb, m, n, k, alpha, A[i], lda, B[i], ldb, beta, C[i], ldc)) return s;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDgemmBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const double* alpha, const double* const A[], int lda,
                                         const double* const B[], int ldb, const double* beta, double* const C[],
                                         int ldc, int count) {
    for (int i = 0; i < count; ++i)
        if (auto s = cublasDgemm(h, ta, tb, m, n, k, alpha, A[i], lda, B[i], ldb, beta, C[i], ldc)) return s;
    return CUBLAS_STATUS_SUCCESS;
}
// bf16 operands (column-major spans as cuBLAS reads them), float32 accumulation and result.
inline cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void* alpha, const void* A, cudaDataType, int lda, const void* B, cudaDataType,
                                   int ldb, const void* beta, void* C, cudaDataType, int ldc, cublasComputeType_t,
                                   cublasGemmAlgo_t) {
    // A stored column-major as rows x cols with leading dimension ld spans (cols-1)*ld + rows.
    auto widen = [](const void* p, int ld, int rows, int cols) {
        std::vector<float> out(std::size_t(ld) * cols);
        const std::size_t span = cols ? std::size_t(cols - 1) * ld + rows : 0;
        const auto* b = static_cast<const __nv_bfloat16*>(p);
        for (std::size_t i = 0; i < span; ++i) out[i] = __bfloat162float(b[i]);
        return out;
    };
    const auto a = ta == CUBLAS_OP_N ? widen(A, lda, m, k) : widen(A, lda, k, m);
    const auto b = tb == CUBLAS_OP_N ? widen(B, ldb, k, n) : widen(B, ldb, n, k);
    return cublasSgemm(h, ta, tb, m, n, k, static_cast<const float*>(alpha), a.data(), lda, b.data(), ldb,
                       static_cast<const float*>(beta), static_cast<float*>(C), ldc);
}
