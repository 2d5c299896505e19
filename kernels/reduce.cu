// reduce.cu — deterministic reductions: column sums (bias and scale gradients) over a fixed row
// partition, and the sum of squares (gradient norm) over a fixed grid. No atomics, so the same
// input always gives the same bits, whatever the GPU.
#include "common.cuh"
#include "ops.h"

namespace meft::cuda {
namespace {

constexpr i64 kMaxRowChunks = 64;
constexpr i64 kMinRowsPerChunk = 32;

i64 row_chunks(i64 N) {
    const i64 c = (N + kMinRowsPerChunk - 1) / kMinRowsPerChunk;
    return c < 1 ? 1 : (c > kMaxRowChunks ? kMaxRowChunks : c);
}

// Stage 1: partial[k, c] = sum of f(r, c) over the rows of chunk k (blockIdx.y), in row order.
template <typename T, typename F> __global__ void column_partial_kernel(T* partial, i64 N, i64 C, i64 chunks, F f) {
    const i64 c = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
    const i64 k = blockIdx.y;
    if (c >= C) return;
    const i64 r0 = N * k / chunks, r1 = N * (k + 1) / chunks;
    T s = 0;
    for (i64 r = r0; r < r1; ++r) s += f(r, c);
    partial[k * C + c] = s;
}
// Stage 2: out[c] += sum over chunks in order.
template <typename T> __global__ void column_finish_kernel(T* out, const T* partial, i64 C, i64 chunks) {
    MEFT_FOR(c, C) {
        T s = 0;
        for (i64 k = 0; k < chunks; ++k) s += partial[k * C + c];
        out[c] += s;
    }
}

template <typename T, typename F> void column_reduce_add(T* out, i64 N, i64 C, T* partial, F f, const char* what) {
    if (C == 0 || N == 0) return;
    const i64 chunks = row_chunks(N);
    const dim3 grid(blocks_for(C), static_cast<unsigned>(chunks));
    MEFT_LAUNCH(column_partial_kernel, grid, kThreads, partial, N, C, chunks, f);
    MEFT_LAUNCHED(what);
    MEFT_LAUNCH(column_finish_kernel, grid_for(C), kThreads, out, partial, C, chunks);
    MEFT_LAUNCHED(what);
}

template <typename T> struct Element {
    const T* x;
    i64 C;
    __device__ T operator()(i64 r, i64 c) const { return x[r * C + c]; }
};
template <typename T> struct Product {
    const T *x, *y;
    i64 C;
    __device__ T operator()(i64 r, i64 c) const { return x[r * C + c] * y[r * C + c]; }
};
template <typename T> struct NormalisedProduct {  // g * (x - mean) * rstd, as the CPU's dw
    const T *g, *x, *mean, *rstd;
    i64 C;
    __device__ T operator()(i64 r, i64 c) const { return g[r * C + c] * (x[r * C + c] - mean[r]) * rstd[r]; }
};

// Block sums in shared memory by a fixed tree; block k writes partials[k].
template <typename T> __global__ void sum_squares_kernel(double* partials, const T* x, i64 n) {
    __shared__ double s[kThreads];
    double acc = 0;
    MEFT_FOR(i, n) acc += double(x[i]) * double(x[i]);
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int o = kThreads / 2; o > 0; o /= 2) {
        if (threadIdx.x < o) s[threadIdx.x] += s[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[blockIdx.x] = s[0];
}
__global__ void sum_partials_kernel(double* partials, int count) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        double t = 0;
        for (int k = 0; k < count; ++k) t += partials[k];
        partials[0] = t;
    }
}

}  // namespace

i64 column_partials(i64 N, i64 C) { return row_chunks(N) * C; }

template <typename T> void column_sum_add(T* out, const T* x, i64 N, i64 C, T* partial) {
    column_reduce_add(out, N, C, partial, Element<T>{x, C}, "column sum");
}
template <typename T> void column_dot_add(T* out, const T* x, const T* y, i64 N, i64 C, T* partial) {
    column_reduce_add(out, N, C, partial, Product<T>{x, y, C}, "column dot");
}
template <typename T>
void layernorm_weight_grad(T* dw, const T* g, const T* x, const T* mean, const T* rstd, i64 N, i64 C, T* partial) {
    column_reduce_add(dw, N, C, partial, NormalisedProduct<T>{g, x, mean, rstd, C}, "layernorm_backward");
}

// The grid is fixed (kSumSquaresBlocks blocks), so the partition of the sum does not depend on
// the device; a single thread adds the block sums in order.
template <typename T> double sum_squares(const T* x, i64 n, double* partials) {
    if (n == 0) return 0.0;
    MEFT_LAUNCH(sum_squares_kernel, kSumSquaresBlocks, kThreads, partials, x, n);
    MEFT_LAUNCHED("sum_squares");
    MEFT_LAUNCH(sum_partials_kernel, 1, 1, partials, kSumSquaresBlocks);
    MEFT_LAUNCHED("sum_squares");
    double total = 0;
    MEFT_CUDA(cudaMemcpy(&total, partials, sizeof(double), cudaMemcpyDeviceToHost));
    return total;
}

#define MEFT_INSTANTIATE(T)                                                                     \
    template void column_sum_add<T>(T*, const T*, i64, i64, T*);                                \
    template void column_dot_add<T>(T*, const T*, const T*, i64, i64, T*);                      \
    template void layernorm_weight_grad<T>(T*, const T*, const T*, const T*, const T*, i64, i64, T*); \
    template double sum_squares<T>(const T*, i64, double*);
MEFT_INSTANTIATE(float)
MEFT_INSTANTIATE(double)

}  // namespace meft::cuda
