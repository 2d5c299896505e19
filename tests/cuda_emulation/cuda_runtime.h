// cuda_runtime.h (host emulation) — just enough of the CUDA runtime and execution model to run
// the kernels of kernels/ on the CPU, for tests on machines without a GPU.
//
// The kernels' .cu files are compiled by g++ with this folder first on the include path and
// MEFT_CUDA_HOST_EMULATION defined (see emulated_backend.cmake). Device memory is host memory.
// A launch runs its blocks one after another; the threads of a block run as cooperative fibers
// (ucontext), so __syncthreads and warp shuffles have their real semantics: a shuffle waits for
// all 32 lanes of the warp, a barrier for every live thread of the block, and a barrier that can
// never complete is reported as a deadlock. Kernels that never synchronise run their threads
// directly, without fibers.
//
// What this verifies: index arithmetic, bounds, launch geometry, reductions' orders, the host code
// of the backend and its cuBLAS calls (cublas_v2.h here maps them onto column-major CBLAS). What
// it cannot: races between blocks or threads that only real concurrency exposes, memory-model and
// coalescing behaviour, real CUDA error paths, and speed.
#pragma once
#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <csetjmp>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using std::erf;
using std::exp;
using std::fmax;
using std::llround;
using std::log;
using std::sqrt;
using std::tanh;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// ---- runtime API -----------------------------------------------------------------------------
enum cudaError_t { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorInvalidValue = 1 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyHostToHost };
struct cudaDeviceProp {
    char name[256];
};

namespace meft::emu {

// Bytes the emulated device pretends to have (tests may lower it to provoke out-of-memory).
inline std::size_t g_total_bytes = std::size_t(16) << 30;
inline std::size_t g_used_bytes = 0;
inline std::vector<std::pair<void*, std::size_t>> g_allocations;

}  // namespace meft::emu

inline const char* cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "invalid argument";
}
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaPeekAtLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) {
    *n = 1;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
    std::snprintf(p->name, sizeof p->name, "%s", "host emulation");
    return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaMalloc(void** p, std::size_t bytes) {
    using namespace meft::emu;
    if (g_used_bytes + bytes > g_total_bytes) return cudaErrorMemoryAllocation;
    *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
    if (!*p) return cudaErrorMemoryAllocation;
    std::memset(*p, 0xA7, bytes);  // uninitialised device memory is not zero
    g_used_bytes += bytes;
    g_allocations.emplace_back(*p, bytes);
    return cudaSuccess;
}
template <typename T> cudaError_t cudaMalloc(T** p, std::size_t bytes) {  // as the runtime's C++ overload
    return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
    using namespace meft::emu;
    for (auto it = g_allocations.begin(); it != g_allocations.end(); ++it)
        if (it->first == p) {
            g_used_bytes -= it->second;
            g_allocations.erase(it);
            std::free(p);
            return cudaSuccess;
        }
    return p ? cudaErrorInvalidValue : cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(std::size_t* free_b, std::size_t* total_b) {
    *free_b = meft::emu::g_total_bytes - meft::emu::g_used_bytes;
    *total_b = meft::emu::g_total_bytes;
    return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t n, cudaMemcpyKind) {
    if (n) std::memmove(dst, src, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int v, std::size_t n) {
    std::memset(p, v, n);
    return cudaSuccess;
}

// ---- execution model -------------------------------------------------------------------------
namespace meft::emu {

inline dim3 g_block_idx, g_thread_idx, g_block_dim, g_grid_dim;

// Thrown by a barrier reached outside fiber mode: the launch restarts with fibers.
struct NeedsFibers {};

class BlockScheduler {
public:
    static constexpr std::size_t kStackBytes = 64 * 1024;

    // Runs `body` once per thread of one block, the threads as fibers. A fiber is made once (the
    // only ucontext switch, which costs a system call) and then serves every block: switches
    // between fibers and the scheduler are _setjmp/_longjmp, which touch no signal mask.
    template <typename F> void run(unsigned threads, F& body) {
        body_ = [](void* f) { (*static_cast<F*>(f))(); };
        body_arg_ = &body;
        while (fibers_.size() < threads) fibers_.push_back(std::make_unique<Fiber>());
        threads_ = threads;
        live_ = threads;
        block_arrived_ = 0;
        warp_arrived_.assign((threads + 31) / 32, 0);
        exchange_.assign(warp_arrived_.size() * 32, 0);  // sized up front: lanes hold pointers into it
        for (unsigned t = 0; t < threads; ++t) fibers_[t]->state = Ready;
        current_ = this;
        for (;;) {
            bool progressed = false, waiting = false;
            for (unsigned t = 0; t < threads; ++t) {
                Fiber& f = *fibers_[t];
                if (f.state == Waiting) waiting = true;
                if (f.state != Ready) continue;
                progressed = true;
                running_ = t;
                g_thread_idx = dim3(t % g_block_dim.x, (t / g_block_dim.x) % g_block_dim.y, t / (g_block_dim.x * g_block_dim.y));
                resume(f);
            }
            if (!progressed) {
                if (waiting) throw std::logic_error("emulated CUDA kernel deadlocked at a barrier");
                break;
            }
        }
        current_ = nullptr;
    }

    static BlockScheduler* current() { return current_; }

    void sync_block() { arrive(block_arrived_, Block, 0); }
    void sync_warp() {
        const unsigned w = running_ / 32;
        arrive(warp_arrived_[w], Warp, w);
    }
    unsigned lane() const { return running_ % 32; }
    unsigned warp() const { return running_ / 32; }
    std::uint64_t* exchange(unsigned warp) { return exchange_.data() + warp * 32; }

private:
    enum State { Ready, Waiting, Done };
    enum Kind { Block, Warp };
    struct Fiber {
        std::jmp_buf jb;
        ucontext_t start;
        std::vector<char> stack;
        bool started = false;
        State state = Done;
        Kind kind = Block;
        unsigned group = 0;
    };

    void resume(Fiber& f) {
        if (_setjmp(scheduler_jb_)) return;  // the fiber yielded back here
        if (f.started) _longjmp(f.jb, 1);
        f.started = true;
        f.stack.resize(kStackBytes);
        getcontext(&f.start);
        f.start.uc_stack.ss_sp = f.stack.data();
        f.start.uc_stack.ss_size = f.stack.size();
        f.start.uc_link = nullptr;
        makecontext(&f.start, &BlockScheduler::fiber_main, 0);
        ucontext_t here;
        swapcontext(&here, &f.start);  // never returns here: the fiber comes back by _longjmp
    }
    void yield() {
        Fiber& f = *fibers_[running_];
        if (!_setjmp(f.jb)) _longjmp(scheduler_jb_, 1);
    }

    // A fiber's life: run the body for its thread of the current block, then wait for the next.
    static void fiber_main() {
        for (;;) {
            BlockScheduler* s = current_;
            s->body_(s->body_arg_);
            s->fibers_[s->running_]->state = Done;
            --s->live_;
            s->release_if_complete();
            s->yield();
        }
    }

    unsigned expected(Kind kind, unsigned group) const {
        if (kind == Block) return live_;
        unsigned n = 0;
        for (unsigned t = group * 32; t < std::min(threads_, group * 32 + 32); ++t)
            if (fibers_[t]->state != Done) ++n;
        return n;
    }

    void arrive(unsigned& counter, Kind kind, unsigned group) {
        Fiber& f = *fibers_[running_];
        f.state = Waiting;
        f.kind = kind;
        f.group = group;
        ++counter;
        release_if_complete();
        if (f.state == Waiting) yield();
    }

    // Wake every group whose waiting threads are all its live threads.
    void release_if_complete() {
        if (block_arrived_ && block_arrived_ == expected(Block, 0)) {
            for (unsigned t = 0; t < threads_; ++t)
                if (fibers_[t]->state == Waiting && fibers_[t]->kind == Block) fibers_[t]->state = Ready;
            block_arrived_ = 0;
        }
        for (unsigned w = 0; w < warp_arrived_.size(); ++w)
            if (warp_arrived_[w] && warp_arrived_[w] == expected(Warp, w)) {
                for (unsigned t = w * 32; t < std::min(threads_, w * 32 + 32); ++t)
                    if (fibers_[t]->state == Waiting && fibers_[t]->kind == Warp) fibers_[t]->state = Ready;
                warp_arrived_[w] = 0;
            }
    }

    inline static BlockScheduler* current_ = nullptr;
    std::jmp_buf scheduler_jb_;
    std::vector<std::unique_ptr<Fiber>> fibers_;
    std::vector<unsigned> warp_arrived_;
    std::vector<std::uint64_t> exchange_;
    unsigned threads_ = 0, live_ = 0, running_ = 0, block_arrived_ = 0;
    void (*body_)(void*) = nullptr;
    void* body_arg_ = nullptr;
};

inline BlockScheduler& scheduler() {
    static BlockScheduler s;
    return s;
}

// Runs `body` (a call of the kernel) for every thread of every block.
template <typename F> void launch(dim3 grid, dim3 block, F&& body) {
    g_grid_dim = grid;
    g_block_dim = block;
    const unsigned threads = block.x * block.y * block.z;
    static thread_local bool needs_fibers = false;  // per launch site (F is the site's lambda type)
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                g_block_idx = dim3(bx, by, bz);
                if (!needs_fibers) {
                    try {
                        for (unsigned t = 0; t < threads; ++t) {
                            g_thread_idx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
                            body();
                        }
                        continue;
                    } catch (const NeedsFibers&) {
                        // The first barrier comes before any global write in these kernels (checked
                        // when the kernel is written), so the block simply runs again with fibers.
                        needs_fibers = true;
                    }
                }
                scheduler().run(threads, body);
            }
}

}  // namespace meft::emu

#define blockIdx (::meft::emu::g_block_idx)
#define threadIdx (::meft::emu::g_thread_idx)
#define blockDim (::meft::emu::g_block_dim)
#define gridDim (::meft::emu::g_grid_dim)

inline void __syncthreads() {
    auto* s = meft::emu::BlockScheduler::current();
    if (!s) throw meft::emu::NeedsFibers{};
    s->sync_block();
}

template <typename T> T __shfl_xor_sync(unsigned, T v, int lane_mask) {
    static_assert(sizeof(T) <= sizeof(std::uint64_t));
    auto* s = meft::emu::BlockScheduler::current();
    if (!s) throw meft::emu::NeedsFibers{};
    std::uint64_t* slots = s->exchange(s->warp());
    const unsigned lane = s->lane();
    std::memcpy(&slots[lane], &v, sizeof(T));
    s->sync_warp();  // every lane has written
    T r;
    std::memcpy(&r, &slots[lane ^ static_cast<unsigned>(lane_mask)], sizeof(T));
    s->sync_warp();  // every lane has read before the slots are reused
    return r;
}
