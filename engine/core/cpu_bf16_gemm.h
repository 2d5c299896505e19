// cpu_bf16_gemm.h — float32 GEMMs with bf16 operands on the CPU: the CPU backend's
// training.gemm_precision "bf16" (operands rounded to bf16, float32 accumulation and result, as
// the CUDA backend's cuBLAS GemmEx). They run on oneDNN's matmul with the AVX512_BF16 dot products.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace meft {

// Whether this process can run them: the build has oneDNN and the CPU, as oneDNN sees it, has
// the AVX512_BF16 instructions (DNNL_MAX_CPU_ISA / ONEDNN_MAX_CPU_ISA can hide them). Otherwise
// `why` (when given) says what is missing.
bool cpu_bf16_gemm_available(std::string* why = nullptr);

// out[i] = float_to_bf16(in[i]) (dtype.h: nearest even, NaN stays a quiet NaN, denormals kept, as
// CUDA's __float2bfloat16_rn) for i < n, vectorised; the caller splits large arrays across threads.
void round_to_bf16(std::uint16_t* out, const float* in, std::size_t n);

// Row-major C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta * C, A and B bf16 (ta: A is stored
// K x M; tb: B is stored N x K), C float32, on the calling thread only. Deterministic: the same
// shapes and operands give the same bits. Error where cpu_bf16_gemm_available() is false.
void bf16_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const std::uint16_t* A, int lda,
               const std::uint16_t* B, int ldb, float beta, float* C, int ldc);

// How many shapes' matmuls the calling thread keeps made (bounded: the least recently used goes
// past bf16_gemm_max_cached_shapes()).
std::size_t bf16_gemm_cached_shapes();
std::size_t bf16_gemm_max_cached_shapes();

}  // namespace meft
