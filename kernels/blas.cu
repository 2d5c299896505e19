#include "blas.h"

#include <cuda_bf16.h>

#include <type_traits>

#include "common.cuh"

namespace meft::cuda {
namespace {

constexpr std::size_t kWorkspaceBytes = 32u << 20;  // fixed: cuBLAS's algorithm choice depends on it

cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

// Elements spanned by a row-major operand of `rows` x `cols` (as stored) with leading dimension ld.
std::size_t span(int rows, int cols, int ld) { return rows == 0 ? 0 : std::size_t(rows - 1) * ld + cols; }

__global__ void to_bf16_kernel(__nv_bfloat16* out, const float* in, i64 n) {
    MEFT_FOR(i, n) out[i] = __float2bfloat16_rn(in[i]);
}

const __nv_bfloat16* as_bf16(__nv_bfloat16* out, const float* in, std::size_t n) {
    if (n) {
        MEFT_LAUNCH(to_bf16_kernel, grid_for(i64(n)), kThreads, out, in, i64(n));
        MEFT_LAUNCHED("bf16 operand conversion");
    }
    return out;
}

}  // namespace

Blas::Blas(GemmPrecision precision) : precision_(precision) {
    MEFT_CUBLAS(cublasCreate(&handle_));
    MEFT_CUDA(cudaMalloc(&workspace_, kWorkspaceBytes));
    MEFT_CUBLAS(cublasSetWorkspace(handle_, workspace_, kWorkspaceBytes));
    MEFT_CUBLAS(cublasSetMathMode(handle_, precision == GemmPrecision::TF32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                            : CUBLAS_DEFAULT_MATH));
}

Blas::~Blas() {
    if (handle_) cublasDestroy(handle_);
    if (workspace_) cudaFree(workspace_);
}

template <typename T>
void Blas::gemm(bool ta, bool tb, int M, int N, int K, double alpha, const T* A, int lda, const T* B, int ldb,
                double beta, T* C, int ldc) {
    if (M == 0 || N == 0) return;
    if constexpr (std::is_same_v<T, double>) {
        MEFT_CUBLAS(cublasDgemm(handle_, op(tb), op(ta), N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
    } else {
        const float a = static_cast<float>(alpha), b = static_cast<float>(beta);
        if (precision_ != GemmPrecision::BF16) {
            MEFT_CUBLAS(cublasSgemm(handle_, op(tb), op(ta), N, M, K, &a, B, ldb, A, lda, &b, C, ldc));
            return;
        }
        // op(A) is M x K: stored M x K (lda) or, transposed, K x M.
        const std::size_t na = ta ? span(K, M, lda) : span(M, K, lda), nb = tb ? span(N, K, ldb) : span(K, N, ldb);
        auto* buf = bf16_.get<__nv_bfloat16>(na + nb);
        const __nv_bfloat16* a16 = as_bf16(buf, A, na);
        const __nv_bfloat16* b16 = as_bf16(buf + na, B, nb);
        MEFT_CUBLAS(cublasGemmEx(handle_, op(tb), op(ta), N, M, K, &a, b16, CUDA_R_16BF, ldb, a16, CUDA_R_16BF, lda,
                                 &b, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
}

template <typename T>
void Blas::gemm_batched(bool ta, bool tb, int M, int N, int K, double alpha, const T* const* A, int lda,
                        const T* const* B, int ldb, double beta, T* const* C, int ldc, int count) {
    if (M == 0 || N == 0 || count == 0) return;
    if constexpr (std::is_same_v<T, double>) {
        MEFT_CUBLAS(cublasDgemmBatched(handle_, op(tb), op(ta), N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc, count));
    } else {
        const float a = static_cast<float>(alpha), b = static_cast<float>(beta);
        MEFT_CUBLAS(cublasSgemmBatched(handle_, op(tb), op(ta), N, M, K, &a, B, ldb, A, lda, &b, C, ldc, count));
    }
}

template void Blas::gemm<float>(bool, bool, int, int, int, double, const float*, int, const float*, int, double,
                                float*, int);
template void Blas::gemm<double>(bool, bool, int, int, int, double, const double*, int, const double*, int, double,
                                 double*, int);
template void Blas::gemm_batched<float>(bool, bool, int, int, int, double, const float* const*, int,
                                        const float* const*, int, double, float* const*, int, int);
template void Blas::gemm_batched<double>(bool, bool, int, int, int, double, const double* const*, int,
                                         const double* const*, int, double, double* const*, int, int);

}  // namespace meft::cuda
