// embedding.cu — embedding lookup and its deterministic backward.
#include "common.cuh"
#include "ops.h"

namespace meft::cuda {
namespace {

template <typename T>
__global__ void embeddings_kernel(T* out, const std::int32_t* ids, const std::int32_t* pos, const std::int32_t* types,
                                  const T* wte, const T* wpe, const T* wtt, i64 N, i64 C) {
    MEFT_FOR(i, N * C) {
        const i64 r = i / C, c = i % C;
        T s = wte[i64(ids[r]) * C + c];  // absent tables (null) add nothing: the CPU's order
        if (wpe) s += wpe[i64(pos[r]) * C + c];
        if (wtt) s += wtt[i64(types[r]) * C + c];
        out[i] = s;
    }
}

// Block (u, channel tile): table row table_rows[u] gathers its token rows in increasing order.
template <typename T>
__global__ void embedding_backward_kernel(T* dtable, const T* g, const std::int32_t* table_rows,
                                          const std::int32_t* starts, const std::int32_t* rows, i64 C) {
    const i64 u = blockIdx.y;
    const i64 c = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= C) return;
    T* d = dtable + i64(table_rows[u]) * C + c;
    T s = *d;
    for (std::int32_t k = starts[u]; k < starts[u + 1]; ++k) s += g[i64(rows[k]) * C + c];
    *d = s;
}

}  // namespace

template <typename T>
void embeddings_forward(T* out, const std::int32_t* ids, const std::int32_t* pos, const std::int32_t* types,
                        const T* wte, const T* wpe, const T* wtt, i64 N, i64 C) {
    if (N * C == 0) return;
    MEFT_LAUNCH(embeddings_kernel, grid_for(N * C), kThreads, out, ids, pos, types, wte, wpe, wtt, N, C);
    MEFT_LAUNCHED("embeddings_forward");
}

template <typename T>
void embedding_backward(T* dtable, const T* g, const std::int32_t* table_rows, const std::int32_t* starts,
                        const std::int32_t* rows, i64 n_unique, i64 C) {
    // gridDim.y is at most 65535: walk the unique rows in slices.
    for (i64 u0 = 0; u0 < n_unique; u0 += 65535) {
        const i64 count = n_unique - u0 < 65535 ? n_unique - u0 : 65535;
        const dim3 grid(blocks_for(C), static_cast<unsigned>(count));
        MEFT_LAUNCH(embedding_backward_kernel, grid, kThreads, dtable, g, table_rows + u0, starts + u0, rows, C);
        MEFT_LAUNCHED("embedding_backward");
    }
}

template void embeddings_forward<float>(float*, const std::int32_t*, const std::int32_t*, const std::int32_t*,
                                        const float*, const float*, const float*, i64, i64);
template void embeddings_forward<double>(double*, const std::int32_t*, const std::int32_t*, const std::int32_t*,
                                         const double*, const double*, const double*, i64, i64);
template void embedding_backward<float>(float*, const float*, const std::int32_t*, const std::int32_t*,
                                        const std::int32_t*, i64, i64);
template void embedding_backward<double>(double*, const double*, const std::int32_t*, const std::int32_t*,
                                         const std::int32_t*, i64, i64);

}  // namespace meft::cuda
