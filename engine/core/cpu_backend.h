// cpu_backend.h — the reference backend: every op, in float32 and float64, on the host.
// GEMMs go to OpenBLAS (sgemm/dgemm); row-wise and element-wise loops run on a ThreadPool.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/backend.h"
#include "core/thread_pool.h"

namespace meft {

std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool = default_thread_pool());

// The tiles of attention_tiled_*: query rows x key columns (tests shrink them to cross tile edges).
struct AttentionTiles {
    int q = 64, k = 128;
};
AttentionTiles cpu_attention_tiles();
void set_cpu_attention_tiles(AttentionTiles tiles);
// Elements of one thread's workspace for one head of tiled attention (the shape-only backend
// plans the same).
std::size_t cpu_tiled_attention_workspace(std::int64_t head_size, bool backward);

}  // namespace meft
