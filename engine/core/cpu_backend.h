// cpu_backend.h — the reference backend: every op, in float32 and float64, on the host.
// float32 GEMMs go to oneDNN's sgemm where the build found oneDNN (else, or with
// MEFT_CPU_GEMM=openblas, to OpenBLAS), float64 ones to OpenBLAS's dgemm, and the linear layers'
// to oneDNN's bf16 matmul with CpuBackendOptions::bf16_gemm; row-wise and element-wise loops run
// on a ThreadPool.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/thread_pool.h"

namespace meft {

struct CpuBackendOptions {
    // training.gemm_precision "bf16": the linear layers' float32 GEMMs round both operands to
    // bf16 and accumulate in float32 (oneDNN, AVX512_BF16; cpu_bf16_gemm.h); attention's GEMMs
    // and float64 stay exact. Error at creation where cpu_bf16_gemm_available() is false.
    bool bf16_gemm = false;
};

// The first call reads MEFT_CPU_GEMM ("openblas" or "onednn"; Error for anything else).
std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options, ThreadPool& pool = default_thread_pool());
inline std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool = default_thread_pool()) {
    return make_cpu_backend(CpuBackendOptions{}, pool);
}

// Which library runs the float32 GEMMs of every CPU backend in the process (oneDNN by default
// where available).
enum class CpuGemm { OpenBlas, OneDnn };
bool cpu_gemm_available(CpuGemm g);
CpuGemm cpu_gemm();
void set_cpu_gemm(CpuGemm g);                   // Error when this build lacks it
CpuGemm parse_cpu_gemm(const std::string& name);  // "openblas" | "onednn"
const char* cpu_gemm_name(CpuGemm g);

// Every CPU backend GEMM since the process started (linear and attention, float32, bf16 and
// float64): thread time inside the library calls summed over threads, multiply-adds x 2, calls.
// A bench takes differences around the steps it times.
struct CpuGemmStats {
    double seconds = 0, flops = 0;
    std::int64_t calls = 0;
};
CpuGemmStats cpu_gemm_stats();

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
