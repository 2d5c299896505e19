#include "core/cpu_bf16_gemm.h"

#include <cstring>
#include <list>
#include <map>
#include <tuple>

#include "core/dtype.h"
#include "core/error.h"

#if defined(MEFT_HAVE_ONEDNN)
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace meft {

// At most kMaxMatmuls per thread, each ~150 KB: batches padded to their longest example bring a
// new M with every length, and an unbounded cache would grow with each for as long as the run
// lasts (a loop over random shapes reached 23 GB). The least recently used goes first; a step's
// few dozen shapes stay made.
constexpr std::size_t kMaxMatmuls = 256;

namespace {

void round_loop(std::uint16_t* out, const float* in, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = float_to_bf16(in[i]);
}

// The same loop in AVX-512 (the bf16 GEMMs only run where the CPU has it).
__attribute__((target("avx512f,avx512bw,avx512vl"))) void round_avx512(std::uint16_t* out, const float* in,
                                                                         std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = float_to_bf16(in[i]);
}

}  // namespace

void round_to_bf16(std::uint16_t* out, const float* in, std::size_t n) {
    static const bool avx512 = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (avx512) round_avx512(out, in, n);
    else round_loop(out, in, n);
}

#if defined(MEFT_HAVE_ONEDNN)

namespace {

const char* isa_name(dnnl::cpu_isa isa) {
    using i = dnnl::cpu_isa;
    switch (isa) {
        case i::sse41: return "SSE4.1";
        case i::avx: return "AVX";
        case i::avx2: return "AVX2";
        case i::avx2_vnni: return "AVX2_VNNI";
        case i::avx512_core: return "AVX512_CORE";
        case i::avx512_core_vnni: return "AVX512_CORE_VNNI";
        default: return "another";
    }
}

}  // namespace

bool cpu_bf16_gemm_available(std::string* why) {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    if ((static_cast<unsigned>(isa) & bf16) == bf16) return true;
    if (why)
        *why = std::string("this CPU lacks the AVX512_BF16 instructions (oneDNN found ") + isa_name(isa) +
               "; DNNL_MAX_CPU_ISA or ONEDNN_MAX_CPU_ISA may hide them)";
    return false;
}

namespace {

using Shape = std::tuple<bool, bool, int, int, int, int, int, int, float, float>;

// One matmul per shape, made once per thread and reused (making one takes ~0.3 ms, ~10 ms for
// the first of a kind, which JIT-compiles it); the memory objects are rebound to each call's data.
struct Matmul {
    dnnl::matmul prim;
    dnnl::memory a, b, c;
};

struct ThreadState {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    std::list<std::pair<Shape, Matmul>> recent;  // most recently used first
    std::map<Shape, std::list<std::pair<Shape, Matmul>>::iterator> matmuls;
};

ThreadState& thread_state() {
    thread_local ThreadState state;
    return state;
}

dnnl::memory::desc matrix(int rows, int cols, bool transposed, int ld, dnnl::memory::data_type t) {
    // A row-major rows x cols view; transposed: stored cols x rows, so element (i, j) is at j*ld + i.
    const dnnl::memory::dims strides = transposed ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1};
    return dnnl::memory::desc({rows, cols}, t, strides);
}

Matmul make_matmul(ThreadState& s, const Shape& key) {
    const auto [ta, tb, M, N, K, lda, ldb, ldc, alpha, beta] = key;
    using dt = dnnl::memory::data_type;
    const auto a = matrix(M, K, ta, lda, dt::bf16), b = matrix(K, N, tb, ldb, dt::bf16);
    const auto c = matrix(M, N, false, ldc, dt::f32);
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
        dnnl::post_ops sum;
        sum.append_sum(beta);
        attr.set_post_ops(sum);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, s.engine);
    return Matmul{dnnl::matmul(pd), dnnl::memory(a, s.engine, DNNL_MEMORY_NONE),
                  dnnl::memory(b, s.engine, DNNL_MEMORY_NONE), dnnl::memory(c, s.engine, DNNL_MEMORY_NONE)};
}

}  // namespace

void bf16_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const std::uint16_t* A, int lda,
               const std::uint16_t* B, int ldb, float beta, float* C, int ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {  // oneDNN refuses empty reductions: C = beta * C
        for (int i = 0; i < M; ++i)
            for (int j = 0; j < N; ++j) C[std::size_t(i) * ldc + j] = beta == 0.0f ? 0.0f : beta * C[std::size_t(i) * ldc + j];
        return;
    }
    static const bool available = [] {
        std::string why;
        if (!cpu_bf16_gemm_available(&why)) throw Error("bf16 GEMMs on the CPU: " + why);
        return true;
    }();
    (void)available;
    // One OpenMP thread per calling thread: the engine's pool already runs a GEMM on every core.
    thread_local const bool single_threaded = (omp_set_num_threads(1), true);
    (void)single_threaded;
    try {
        ThreadState& state = thread_state();
        const Shape key{ta, tb, M, N, K, lda, ldb, ldc, alpha, beta};
        auto it = state.matmuls.find(key);
        if (it != state.matmuls.end()) {
            state.recent.splice(state.recent.begin(), state.recent, it->second);
        } else {
            if (state.matmuls.size() == kMaxMatmuls) {
                state.matmuls.erase(state.recent.back().first);
                state.recent.pop_back();
            }
            state.recent.emplace_front(key, make_matmul(state, key));
            state.matmuls.emplace(key, state.recent.begin());
        }
        Matmul& m = state.recent.front().second;
        m.a.set_data_handle(const_cast<std::uint16_t*>(A));
        m.b.set_data_handle(const_cast<std::uint16_t*>(B));
        m.c.set_data_handle(C);
        m.prim.execute(state.stream, {{DNNL_ARG_SRC, m.a}, {DNNL_ARG_WEIGHTS, m.b}, {DNNL_ARG_DST, m.c}});
        state.stream.wait();
    } catch (const dnnl::error& e) {
        throw Error("oneDNN bf16 matmul " + std::to_string(M) + " x " + std::to_string(N) + " x " + std::to_string(K) +
                    " failed: " + e.what());
    }
}

std::size_t bf16_gemm_cached_shapes() { return thread_state().matmuls.size(); }

#else  // no oneDNN in this build

std::size_t bf16_gemm_cached_shapes() { return 0; }

bool cpu_bf16_gemm_available(std::string* why) {
    if (why) *why = "this build has no oneDNN (install libdnnl-dev and rebuild)";
    return false;
}

void bf16_gemm(bool, bool, int, int, int, float, const std::uint16_t*, int, const std::uint16_t*, int, float, float*,
               int) {
    throw Error("bf16 GEMMs on the CPU: this build has no oneDNN (install libdnnl-dev and rebuild)");
}

#endif

std::size_t bf16_gemm_max_cached_shapes() { return kMaxMatmuls; }

}  // namespace meft
