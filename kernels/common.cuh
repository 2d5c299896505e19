// common.cuh — launch geometry, math overloads for float/double and warp reductions shared by the
// kernels. Every reduction here has a fixed order (butterfly shuffles, fixed partitions), never
// atomics, so a kernel run twice on the same input gives the same bits: reversible layers and
// gradient checkpointing rely on a recomputed F or G equalling the forward's.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_check.h"

namespace meft::cuda {

using i64 = std::int64_t;

constexpr int kThreads = 256;          // threads per block for element-wise kernels
constexpr int kWarp = 32;
constexpr int kRowsPerBlock = kThreads / kWarp;  // row kernels: one warp per row

inline unsigned blocks_for(i64 n, int threads = kThreads) {
    const i64 b = (n + threads - 1) / threads;
    return static_cast<unsigned>(b < 1 ? 1 : b);
}

// Grid-stride loop over [0, n) with 64-bit indices.
#define MEFT_FOR(i, n)                                                                              \
    for (::meft::cuda::i64 i = static_cast<::meft::cuda::i64>(blockIdx.x) * blockDim.x + threadIdx.x; \
         i < (n); i += static_cast<::meft::cuda::i64>(blockDim.x) * gridDim.x)

// Kernel launch. The host emulation used by the tests (tests/cuda_emulation/) runs the same
// kernels on the CPU, so launches go through one macro it can redefine.
#if defined(MEFT_CUDA_HOST_EMULATION)
#define MEFT_LAUNCH(kernel, grid, block, ...) ::meft::emu::launch(grid, block, [&] { kernel(__VA_ARGS__); })
#else
#define MEFT_LAUNCH(kernel, grid, block, ...) kernel<<<grid, block>>>(__VA_ARGS__)
#endif

// Grids are capped; MEFT_FOR covers the rest.
inline unsigned grid_for(i64 n) {
    const unsigned b = blocks_for(n);
    return b > 65535u * 8u ? 65535u * 8u : b;
}

__device__ __forceinline__ float d_exp(float x) { return expf(x); }
__device__ __forceinline__ double d_exp(double x) { return exp(x); }
__device__ __forceinline__ float d_log(float x) { return logf(x); }
__device__ __forceinline__ double d_log(double x) { return log(x); }
__device__ __forceinline__ float d_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double d_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float d_erf(float x) { return erff(x); }
__device__ __forceinline__ double d_erf(double x) { return erf(x); }
__device__ __forceinline__ float d_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double d_tanh(double x) { return tanh(x); }

// Sum / max over the 32 lanes of a warp; every lane gets the result (same order in every lane).
template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <typename T> __device__ __forceinline__ T warp_max(T v) {
    for (int o = kWarp / 2; o > 0; o /= 2) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Row kernels: warp `w` of the grid handles row w; lane is the thread's index in its warp.
__device__ __forceinline__ i64 warp_row() {
    return static_cast<i64>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
}
__device__ __forceinline__ int warp_lane() { return threadIdx.x % kWarp; }
inline unsigned blocks_for_rows(i64 rows) { return blocks_for(rows, kRowsPerBlock); }

}  // namespace meft::cuda
