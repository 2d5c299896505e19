// cpu_backend.h — the reference backend: every op, in float32 and float64, on the host.
// GEMMs go to OpenBLAS (sgemm/dgemm; float32 to oneDNN's sgemm with MEFT_CPU_GEMM=onednn where the
// build found oneDNN); row-wise and element-wise loops run on a ThreadPool.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/thread_pool.h"

namespace meft {

// The first call reads MEFT_CPU_GEMM ("openblas" or "onednn"; Error for anything else).
std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool = default_thread_pool());

// Which library runs the float32 GEMMs of every CPU backend in the process.
enum class CpuGemm { OpenBlas, OneDnn };
bool cpu_gemm_available(CpuGemm g);
CpuGemm cpu_gemm();
void set_cpu_gemm(CpuGemm g);                   // Error when this build lacks it
CpuGemm parse_cpu_gemm(const std::string& name);  // "openblas" | "onednn"
const char* cpu_gemm_name(CpuGemm g);

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
