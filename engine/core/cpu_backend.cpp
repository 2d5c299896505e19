// cpu_backend.cpp — the CPU reference implementation of Backend.
// Each op is one templated function over the floating type T (float or double); the class at the
// bottom dispatches on dtype (Backend's entry points have checked the shapes: backend.cpp).
#include "core/cpu_backend.h"

#include <cblas.h>

#include "core/async_signals_held.h"
#include "core/cpu_bf16_gemm.h"
#include "core/cpu_philox.h"
#include "core/cpu_vector_math.h"

extern "C" void openblas_set_num_threads(int num_threads);  // OpenBLAS extension (declared here: netlib's cblas.h lacks it)

#if defined(MEFT_HAVE_ONEDNN)
#include <dnnl.h>
#include <omp.h>
#endif

#include <algorithm>
#include <bit>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <cstring>
#include <limits>
#include <type_traits>

namespace meft {
namespace {

// ---- BLAS -------------------------------------------------------------------------------------
// float32 GEMMs: oneDNN's sgemm where the build has it, else OpenBLAS (MEFT_CPU_GEMM picks);
// float64 always OpenBLAS. Both run single-threaded inside the pool's tasks.
#if defined(MEFT_HAVE_ONEDNN)
std::atomic<CpuGemm> sgemm_library{CpuGemm::OneDnn};
#else
std::atomic<CpuGemm> sgemm_library{CpuGemm::OpenBlas};
#endif

// cpu_gemm_stats(): every GEMM call's thread time and multiply-adds, summed over threads.
std::atomic<std::int64_t> gemm_ns{0}, gemm_flops{0}, gemm_calls{0};

struct GemmTimer {
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::int64_t flops;
    GemmTimer(int M, int N, int K) : flops(2 * std::int64_t(M) * N * K) {}
    ~GemmTimer() {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
        gemm_ns.fetch_add(ns.count(), std::memory_order_relaxed);
        gemm_flops.fetch_add(flops, std::memory_order_relaxed);
        gemm_calls.fetch_add(1, std::memory_order_relaxed);
    }
};

// Row-major C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C
void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const float* A, int lda, const float* B, int ldb,
          double beta, float* C, int ldc) {
    const GemmTimer timer(M, N, K);
#if defined(MEFT_HAVE_ONEDNN)
    if (sgemm_library.load(std::memory_order_relaxed) == CpuGemm::OneDnn) {
        // One OpenMP thread per calling thread: the pool already runs a GEMM on every core.
        thread_local const bool single_threaded = (omp_set_num_threads(1), true);
        (void)single_threaded;
        const AsyncSignalsHeld no_handler_on_its_stack;  // async_signals_held.h says why
        const dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, static_cast<float>(alpha), A, lda,
                                            B, ldb, static_cast<float>(beta), C, ldc);
        if (st != dnnl_success) throw Error("oneDNN sgemm failed (status " + std::to_string(int(st)) + ")");
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                static_cast<float>(alpha), A, lda, B, ldb, static_cast<float>(beta), C, ldc);
}
void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda, const double* B, int ldb,
          double beta, double* C, int ldc) {
    const GemmTimer timer(M, N, K);
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

int as_int(std::int64_t x) {
    MEFT_CHECK(x <= std::numeric_limits<int>::max(), "dimension too large for BLAS");
    return static_cast<int>(x);
}

// All CPU parallelism is the pool's: OpenBLAS runs single-threaded inside pool tasks (set in the
// backend's constructor), so its threads never compete with ours for the cores.
// C[M,N] is split into row blocks (or column blocks when N > M) of whole multiples of 16;
// block(ta, tb, m, n, a, b, c) computes one: op(a) m x K times op(b) K x n into c (ldc as C's).
template <typename TA, typename TC, typename Block>
void split_gemm(ThreadPool& pool, bool ta, bool tb, int M, int N, int K, const TA* A, int lda, const TA* B, int ldb,
                TC* C, int ldc, Block&& block) {
    const bool by_rows = M >= N;
    const int extent = by_rows ? M : N;
    const std::int64_t flops = std::int64_t(M) * N * K;
    const int parts = flops < (1 << 18) ? 1 : std::min(pool.size(), std::max(1, extent / 16));
    if (parts <= 1) {
        block(M, N, A, B, C);
        return;
    }
    pool.parallel_for(parts, [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const int b = static_cast<int>(extent * p / parts) / 16 * 16;
            const int e = p + 1 == parts ? extent : static_cast<int>(extent * (p + 1) / parts) / 16 * 16;
            if (e <= b) continue;
            if (by_rows)  // rows of op(A) and C
                block(e - b, N, ta ? A + b : A + std::int64_t(b) * lda, B, C + std::int64_t(b) * ldc);
            else  // columns of op(B) and C
                block(M, e - b, A, tb ? B + std::int64_t(b) * ldb : B + b, C + b);
        }
    });
}

template <typename T>
void par_gemm(ThreadPool& pool, bool ta, bool tb, int M, int N, int K, double alpha, const T* A, int lda, const T* B,
              int ldb, double beta, T* C, int ldc) {
    split_gemm(pool, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, [&](int m, int n, const T* a, const T* b, T* c) {
        gemm(ta, tb, m, n, K, alpha, a, lda, b, ldb, beta, c, ldc);
    });
}

// Elements spanned by a row-major operand of `rows` x `cols` (as stored) with leading dimension ld.
std::size_t span(int rows, int cols, int ld) { return rows == 0 ? 0 : std::size_t(rows - 1) * ld + cols; }

// The bf16 GEMMs of training.gemm_precision "bf16": one buffer per backend for the rounded
// operands, grown to the largest pair (its bytes are op workspace), and counted for
// op_workspace_bytes(). Only the linear layers' float32 GEMMs use it, as on CUDA.
struct Bf16Operands {
    std::unique_ptr<std::uint16_t[]> data;
    std::size_t size = 0;
    std::uint16_t* get(std::size_t n) {
        if (n > size) {
            data.reset();  // the old buffer goes first, so the peak is the new one only
            data.reset(new std::uint16_t[n]);
            size = n;
        }
        return data.get();
    }
};

// C = op(A) op(B) + beta C with both operands rounded to bf16 first (on the pool), then the
// row or column blocks on oneDNN's bf16 matmul.
void par_gemm_bf16(ThreadPool& pool, Bf16Operands& buffer, bool ta, bool tb, int M, int N, int K, const float* A,
                   int lda, const float* B, int ldb, double beta, float* C, int ldc) {
    const std::size_t na = ta ? span(K, M, lda) : span(M, K, lda), nb = tb ? span(N, K, ldb) : span(K, N, ldb);
    std::uint16_t* a16 = buffer.get(na + nb);
    std::uint16_t* b16 = a16 + na;
    constexpr std::int64_t kChunk = 1 << 14;
    const std::int64_t chunks_a = (std::int64_t(na) + kChunk - 1) / kChunk, chunks = chunks_a + (std::int64_t(nb) + kChunk - 1) / kChunk;
    pool.parallel_for(chunks, [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) {
            const bool first = c < chunks_a;
            const std::int64_t i = (first ? c : c - chunks_a) * kChunk, n = std::int64_t(first ? na : nb);
            round_to_bf16((first ? a16 : b16) + i, (first ? A : B) + i, std::size_t(std::min(kChunk, n - i)));
        }
    }, 1);
    split_gemm(pool, ta, tb, M, N, K, a16, lda, b16, ldb, C, ldc,
               [&](int m, int n, const std::uint16_t* a, const std::uint16_t* b, float* c) {
                   const GemmTimer timer(m, n, K);
                   bf16_gemm(ta, tb, m, n, K, 1.0f, a, lda, b, ldb, static_cast<float>(beta), c, ldc);
               });
}

// ---- dropout masks ----------------------------------------------------------------------------
constexpr std::int64_t kAttnRowStride = kAttentionDropoutStride;

// out[j] = in[j] * keep_j * s for elements [offset, offset+count) of example `example` (out may be
// in). Element e's draw is lane e % 4 of block e / 4; the draws come kBlocks blocks at a time.
template <typename T>
void dropout_span(T* out, const T* in, std::int64_t count, std::int64_t offset, std::uint32_t example,
                  const PhiloxKey& key, std::uint64_t threshold, T s) {
    constexpr std::int64_t kBlocks = 64;
    std::uint32_t draws[4 * kBlocks];
    std::int64_t j = 0;
    while (j < count) {
        const std::int64_t e = offset + j, lane = e & 3;
        const std::int64_t blocks = std::min(kBlocks, (lane + count - j + 3) / 4);
        philox_draws(key, example, static_cast<std::uint32_t>(e >> 2), static_cast<int>(blocks), draws);
        const std::int64_t n = std::min(count - j, 4 * blocks - lane);
        const std::uint32_t* d = draws + lane;
        // dropout_keeps(draw, threshold) as a bit mask over in * s (a dropped element is +0, NaN
        // or not), the comparison in 32 bits (threshold 2^32, p = 1, keeps nothing): it vectorises.
        using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        static_assert(sizeof(U) == sizeof(T));
        const std::uint32_t t32 = static_cast<std::uint32_t>(std::min<std::uint64_t>(threshold, 0xffffffffu));
        const U none = threshold > 0xffffffffu ? U(0) : ~U(0);
        for (std::int64_t i = 0; i < n; ++i) {
            const U keep = (U(0) - U(d[i] >= t32)) & none;
            out[j + i] = std::bit_cast<T>(std::bit_cast<U>(in[j + i] * s) & keep);
        }
        j += n;
    }
}

// Bytes of every thread's attention workspace (Ops::thread_workspace), for op_workspace_bytes().
std::atomic<std::size_t> cpu_workspace_bytes{0};

std::atomic<int> tile_q{64}, tile_k{128};

template <typename T> struct Ops {
    ThreadPool& pool;
    Bf16Operands* bf16 = nullptr;  // set: the linear layers' float32 GEMMs take bf16 operands

    // The linear layers' GEMMs (alpha 1): exact, or with bf16 operands where the backend asks.
    void linear_gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, const T* B,
                     double beta, T* C) {
        const int lda = as_int(ta ? M : K), ldb = as_int(tb ? K : N), ldc = as_int(N);
        if constexpr (std::is_same_v<T, float>) {
            if (bf16) {
                par_gemm_bf16(pool, *bf16, ta, tb, as_int(M), as_int(N), as_int(K), A, lda, B, ldb, beta, C, ldc);
                return;
            }
        }
        par_gemm(pool, ta, tb, as_int(M), as_int(N), as_int(K), 1.0, A, lda, B, ldb, beta, C, ldc);
    }

    // One head's workspace per pool thread (the attention tasks of a thread run one at a time),
    // so attention needs threads x 2 x T^2 extra elements, not B x NH x T^2.
    static T* thread_workspace(std::size_t n) {
        thread_local std::vector<T> ws;
        if (ws.size() < n) {
            cpu_workspace_bytes += (n - ws.size()) * sizeof(T);
            ws.resize(n);
        }
        return ws.data();
    }


    void linear_forward(Tensor out, Tensor inp, Tensor w, Tensor b) {
        const std::int64_t OC = w.dim(0), C = w.dim(1), N = inp.numel() / C;
        T* o = out.ptr<T>();
        double beta = 0;
        if (b) {
            const T* bb = b.ptr<T>();
            pool.parallel_for(N, [&](std::int64_t r0, std::int64_t r1) {
                for (std::int64_t r = r0; r < r1; ++r) std::memcpy(o + r * OC, bb, sizeof(T) * OC);
            }, 64);
            beta = 1;
        }
        linear_gemm(false, true, N, OC, C, inp.ptr<T>(), w.ptr<T>(), beta, o);
    }

    void linear_backward(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, bool acc) {
        const std::int64_t OC = w.dim(0), C = w.dim(1), N = dout.numel() / OC;
        const T* g = dout.ptr<T>();
        if (dinp)
            linear_gemm(false, false, N, C, OC, g, w.ptr<T>(), acc ? 1.0 : 0.0, dinp.ptr<T>());
        if (dw)
            linear_gemm(true, false, OC, C, N, g, inp.ptr<T>(), 1.0, dw.ptr<T>());
        if (db) {
            T* d = db.ptr<T>();
            pool.parallel_for(OC, [&](std::int64_t c0, std::int64_t c1) {
                for (std::int64_t r = 0; r < N; ++r)
                    for (std::int64_t c = c0; c < c1; ++c) d[c] += g[r * OC + c];
            }, 64);
        }
    }

    // The sum of f(c) over c < C in eight running sums, added in a fixed order (so it vectorises
    // and does not depend on the thread count).
    template <typename F> static T lane_sum(std::int64_t C, F f) {
        constexpr int kLanes = 8;
        T lane[kLanes] = {};
        std::int64_t c = 0;
        for (; c + kLanes <= C; c += kLanes)
            for (int j = 0; j < kLanes; ++j) lane[j] += f(c + j);
        T s = 0;
        for (int j = 0; j < kLanes; ++j) s += lane[j];
        for (; c < C; ++c) s += f(c);
        return s;
    }

    // One row of layernorm_forward: o = (x - mean) * rstd * w + b over C channels.
    static void layernorm_row(T* o, T* mean, T* rstd, const T* x, const T* w, const T* b, std::int64_t C, double eps) {
        const T m = lane_sum(C, [x](std::int64_t c) { return x[c]; }) / T(C);
        const T var = lane_sum(C, [x, m](std::int64_t c) { return (x[c] - m) * (x[c] - m); }) / T(C);
        const T s = T(1) / std::sqrt(var + T(eps));
        for (std::int64_t c = 0; c < C; ++c) o[c] = (x[c] - m) * s * w[c] + b[c];
        *mean = m;
        *rstd = s;
    }

    // One row of layernorm_backward's input gradient: dx (= or +=) d(x) from g = d(out).
    static void layernorm_grad_row(T* dx, const T* g, const T* x, const T* w, T m, T s, std::int64_t C, bool acc) {
        const T sum_dxh = lane_sum(C, [g, w](std::int64_t c) { return g[c] * w[c]; }) / T(C);
        const T sum_dxh_xh = lane_sum(C, [g, w, x, m, s](std::int64_t c) { return g[c] * w[c] * (x[c] - m) * s; }) / T(C);
        for (std::int64_t c = 0; c < C; ++c) {
            const T v = s * (g[c] * w[c] - sum_dxh - (x[c] - m) * s * sum_dxh_xh);
            dx[c] = acc ? dx[c] + v : v;
        }
    }

    // layernorm_backward's dw += sum_rows(g * xhat), db += sum_rows(g), split by channels.
    void layernorm_param_grads(Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor mean, Tensor rstd) {
        if (!dw && !db) return;
        const std::int64_t C = inp.dim(-1), N = inp.numel() / C;
        const T *x = inp.ptr<T>(), *g = dout.ptr<T>(), *mu = mean.ptr<T>(), *rs = rstd.ptr<T>();
        T* dww = dw ? dw.ptr<T>() : nullptr;
        T* dbb = db ? db.ptr<T>() : nullptr;
        pool.parallel_for(C, [&](std::int64_t c0, std::int64_t c1) {
            for (std::int64_t r = 0; r < N; ++r) {
                const T *xr = x + r * C, *gr = g + r * C;
                const T m = mu[r], s = rs[r];
                for (std::int64_t c = c0; c < c1; ++c) {
                    if (dww) dww[c] += gr[c] * (xr[c] - m) * s;
                    if (dbb) dbb[c] += gr[c];
                }
            }
        }, 64);
    }

    void layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor w, Tensor b, double eps) {
        const std::int64_t C = inp.dim(-1), N = inp.numel() / C;
        const T *x = inp.ptr<T>(), *ww = w.ptr<T>(), *bb = b.ptr<T>();
        T *o = out.ptr<T>(), *mu = mean.ptr<T>(), *rs = rstd.ptr<T>();
        pool.parallel_for(N, [&](std::int64_t r0, std::int64_t r1) {
            for (std::int64_t r = r0; r < r1; ++r) layernorm_row(o + r * C, mu + r, rs + r, x + r * C, ww, bb, C, eps);
        }, 8);
    }

    void layernorm_backward(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, Tensor mean,
                            Tensor rstd, bool acc) {
        const std::int64_t C = inp.dim(-1), N = inp.numel() / C;
        const T *x = inp.ptr<T>(), *g = dout.ptr<T>(), *ww = w.ptr<T>(), *mu = mean.ptr<T>(), *rs = rstd.ptr<T>();
        if (dinp) {
            T* dx = dinp.ptr<T>();
            pool.parallel_for(N, [&](std::int64_t r0, std::int64_t r1) {
                for (std::int64_t r = r0; r < r1; ++r)
                    layernorm_grad_row(dx + r * C, g + r * C, x + r * C, ww, mu[r], rs[r], C, acc);
            }, 8);
        }
        layernorm_param_grads(dw, db, dout, inp, mean, rstd);
    }

    // The fused block end (Backend::dropout_add_layernorm_forward): per row, dropout (the same
    // draws as dropout(): example r / rows_per_example, offset (r % rows_per_example) * C), the
    // residual, the LayerNorm, while the row is in cache. The same bits as the three ops.
    void dropout_add_layernorm(Tensor out, Tensor mean, Tensor rstd, Tensor res, Tensor x, Tensor w, Tensor b,
                               double eps, double p, const PhiloxKey& key, int example_offset) {
        const std::int64_t C = res.dim(-1), N = res.numel() / C, per = N / res.dim(0);
        const T *xx = x.ptr<T>(), *ww = w.ptr<T>(), *bb = b.ptr<T>();
        T *rr = res.ptr<T>(), *o = out.ptr<T>(), *mu = mean.ptr<T>(), *rs = rstd.ptr<T>();
        const std::uint64_t th = p > 0 ? drop_threshold(p) : 0;
        const T s = p > 0 ? T(1) / (T(1) - T(p)) : T(1);
        pool.parallel_for(N, [&](std::int64_t r0, std::int64_t r1) {
            for (std::int64_t r = r0; r < r1; ++r) {
                T* row = rr + r * C;
                if (p > 0) dropout_span(row, row, C, (r % per) * C, static_cast<std::uint32_t>(r / per + example_offset), key, th, s);
                const T* xr = xx + r * C;
                for (std::int64_t c = 0; c < C; ++c) row[c] = row[c] + xr[c];
                layernorm_row(o + r * C, mu + r, rs + r, row, ww, bb, C, eps);
            }
        }, 8);
    }

    // Its backward (Backend::layernorm_dropout_backward): dw, db first (they read dout, which dres
    // may be), then per row the input gradient into dbranch, a copy into dres, dropout in place.
    void layernorm_dropout_backward(Tensor dbranch, Tensor dres, Tensor dw, Tensor db, Tensor dout, Tensor res, Tensor w,
                                    Tensor mean, Tensor rstd, double p, const PhiloxKey& key, int example_offset) {
        layernorm_param_grads(dw, db, dout, res, mean, rstd);
        const std::int64_t C = res.dim(-1), N = res.numel() / C, per = N / res.dim(0);
        const T *x = res.ptr<T>(), *g = dout.ptr<T>(), *ww = w.ptr<T>(), *mu = mean.ptr<T>(), *rs = rstd.ptr<T>();
        T *dbr = dbranch.ptr<T>(), *dr = dres.ptr<T>();
        const std::uint64_t th = p > 0 ? drop_threshold(p) : 0;
        const T s = p > 0 ? T(1) / (T(1) - T(p)) : T(1);
        pool.parallel_for(N, [&](std::int64_t r0, std::int64_t r1) {
            for (std::int64_t r = r0; r < r1; ++r) {
                T* row = dbr + r * C;
                layernorm_grad_row(row, g + r * C, x + r * C, ww, mu[r], rs[r], C, false);
                std::memcpy(dr + r * C, row, sizeof(T) * C);
                if (p > 0) dropout_span(row, row, C, (r % per) * C, static_cast<std::uint32_t>(r / per + example_offset), key, th, s);
            }
        }, 8);
    }

    template <typename F> void map2(Tensor out, Tensor a, F f) {
        T* o = out.ptr<T>();
        const T* x = a.ptr<T>();
        pool.parallel_for(out.numel(), [&](std::int64_t i0, std::int64_t i1) {
            for (std::int64_t i = i0; i < i1; ++i) o[i] = f(x[i]);
        }, 4096);
    }
    template <typename F> void map3(Tensor out, Tensor a, Tensor b, F f) {
        T* o = out.ptr<T>();
        const T *x = a.ptr<T>(), *y = b.ptr<T>();
        pool.parallel_for(out.numel(), [&](std::int64_t i0, std::int64_t i1) {
            for (std::int64_t i = i0; i < i1; ++i) o[i] = f(x[i], y[i]);
        }, 4096);
    }

    void gelu_forward(Tensor out, Tensor inp) {
        if constexpr (std::is_same_v<T, float>) {
            float* o = out.ptr<float>();
            const float* x = inp.ptr<float>();
            pool.parallel_for(out.numel(), [&](std::int64_t i0, std::int64_t i1) { vecmath::gelu_forward(o + i0, x + i0, i1 - i0); }, 4096);
            return;
        }
        map2(out, inp, [](T x) { return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2))); });
    }
    void gelu_backward(Tensor dinp, Tensor dout, Tensor inp) {
        if constexpr (std::is_same_v<T, float>) {
            float* d = dinp.ptr<float>();
            const float *g = dout.ptr<float>(), *x = inp.ptr<float>();
            pool.parallel_for(dinp.numel(), [&](std::int64_t i0, std::int64_t i1) { vecmath::gelu_backward(d + i0, g + i0, x + i0, i1 - i0); }, 4096);
            return;
        }
        const T k = T(0.5) * T(M_2_SQRTPI) * T(M_SQRT1_2);  // 1/sqrt(2 pi)
        map3(dinp, dout, inp, [k](T g, T x) {
            const T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
            return g * (cdf + x * k * std::exp(T(-0.5) * x * x));
        });
    }
    void tanh_forward(Tensor out, Tensor inp) { map2(out, inp, [](T x) { return std::tanh(x); }); }
    void relu_forward(Tensor out, Tensor inp) { map2(out, inp, [](T x) { return x > T(0) ? x : T(0); }); }
    void relu_backward(Tensor dinp, Tensor dout, Tensor inp) {
        map3(dinp, dout, inp, [](T g, T x) { return x > T(0) ? g : T(0); });
    }
    void tanh_backward(Tensor dinp, Tensor dout, Tensor out) {
        map3(dinp, dout, out, [](T g, T y) { return g * (T(1) - y * y); });
    }

    void dropout(Tensor out, Tensor inp, double p, const PhiloxKey& key, int example_offset) {
        const std::int64_t B = inp.dim(0), M = inp.numel() / B;
        const T* x = inp.ptr<T>();
        T* o = out.ptr<T>();
        if (p <= 0) {
            if (o != x) std::memcpy(o, x, inp.bytes());
            return;
        }
        const std::uint64_t th = drop_threshold(p);
        const T s = T(1) / (T(1) - T(p));
        // Parallel over 1024-element spans so batch 1 still uses every thread.
        const std::int64_t span = 1024, spans = (M + span - 1) / span;
        pool.parallel_for(B * spans, [&](std::int64_t i0, std::int64_t i1) {
            for (std::int64_t i = i0; i < i1; ++i) {
                const std::int64_t b = i / spans, off = (i % spans) * span, n = std::min(span, M - off);
                dropout_span(o + b * M + off, x + b * M + off, n, off, static_cast<std::uint32_t>(b + example_offset),
                             key, th, s);
            }
        }, 4);
    }

    void embeddings_forward(Tensor out, Tensor ids, Tensor pos, Tensor types, Tensor wte, Tensor wpe, Tensor wtt) {
        const std::int64_t C = wte.dim(1), N = ids.numel();
        const std::int32_t* id = ids.ptr<std::int32_t>();
        const std::int32_t* ps = wpe ? pos.ptr<std::int32_t>() : nullptr;
        const std::int32_t* ty = wtt ? types.ptr<std::int32_t>() : nullptr;
        const T *te = wte.ptr<T>(), *pe = wpe ? wpe.ptr<T>() : nullptr, *ye = wtt ? wtt.ptr<T>() : nullptr;
        T* o = out.ptr<T>();
        pool.parallel_for(N, [&](std::int64_t r0, std::int64_t r1) {
            for (std::int64_t r = r0; r < r1; ++r) {
                const T* a = te + std::int64_t(id[r]) * C;
                for (std::int64_t j = 0; j < C; ++j) o[r * C + j] = a[j];
                if (pe) {
                    const T* b = pe + std::int64_t(ps[r]) * C;
                    for (std::int64_t j = 0; j < C; ++j) o[r * C + j] += b[j];
                }
                if (ye) {
                    const T* c = ye + std::int64_t(ty[r]) * C;
                    for (std::int64_t j = 0; j < C; ++j) o[r * C + j] += c[j];
                }
            }
        }, 16);
    }

    void embedding_backward(Tensor dtable, Tensor dout, Tensor ids) {
        const std::int64_t C = dtable.dim(1), N = ids.numel();
        const std::int32_t* id = ids.ptr<std::int32_t>();
        const T* g = dout.ptr<T>();
        T* d = dtable.ptr<T>();
        // Parallel over channel slices: two rows with the same id never race.
        pool.parallel_for(C, [&](std::int64_t c0, std::int64_t c1) {
            for (std::int64_t r = 0; r < N; ++r) {
                T* dr = d + std::int64_t(id[r]) * C;
                for (std::int64_t c = c0; c < c1; ++c) dr[c] += g[r * C + c];
            }
        }, 64);
    }

    // Dropout of one head's probabilities P[T,T] (example b, head h); see attention_dropout.
    // Dropout of one head's probabilities P[Tq,Tk] (example b, head h): element (i, j) draws the
    // counter at offset (h*4096 + i)*4096 + j, independent of how far the batch is padded.
    void head_dropout(T* out, const T* in, std::int64_t b, std::int64_t h, std::int64_t Tq, std::int64_t Tk, double p,
                      const PhiloxKey& key, int example_offset) {
        const std::uint64_t th = drop_threshold(p);
        const T s = T(1) / (T(1) - T(p));
        for (std::int64_t i = 0; i < Tq; ++i)
            dropout_span(out + i * Tk, in + i * Tk, Tk, (h * kAttnRowStride + i) * kAttnRowStride,
                         static_cast<std::uint32_t>(b + example_offset), key, th, s);
    }

    // Softmax of one row over keys; padded keys get probability exactly 0.
    static void masked_softmax_row(T* row, const std::int32_t* m, std::int64_t n) {
        T mx = -std::numeric_limits<T>::infinity();
        for (std::int64_t j = 0; j < n; ++j)
            if (m[j]) mx = std::max(mx, row[j]);
        if (mx == -std::numeric_limits<T>::infinity()) {  // every key is padding
            std::fill_n(row, n, T(0));
            return;
        }
        for (std::int64_t j = 0; j < n; ++j)
            if (!m[j]) row[j] = mx - T(200);  // exp underflows to exactly 0
        T sum;
        if constexpr (std::is_same_v<T, float>) {
            sum = vecmath::exp_shifted_sum(row, mx, n);
        } else {
            sum = 0;
            for (std::int64_t j = 0; j < n; ++j) sum += (row[j] = std::exp(row[j] - mx));
        }
        const T inv = T(1) / sum;
        for (std::int64_t j = 0; j < n; ++j) row[j] = m[j] ? row[j] * inv : T(0);
    }

    // One task per (example, head): its GEMMs run single-threaded inside the task. Head h of
    // example b is the [T, HS] slice at columns h*HS of a [B,T,C] tensor (leading dimension C).
    // Queries have Tq rows, keys and values Tk >= Tq (prefix-tuning prepends keys).
    void attention_forward(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor key_mask, int NH, double p,
                           const PhiloxKey& key, int example_offset, bool causal) {
        const std::int64_t B = q.dim(0), Tq = q.dim(1), Tk = k.dim(1), C = q.dim(2), HS = C / NH, TT = Tq * Tk;
        const int iq = as_int(Tq), ik = as_int(Tk), iC = as_int(C), iHS = as_int(HS);
        const double scale = 1.0 / std::sqrt(double(HS));
        const T *Q = q.ptr<T>(), *K = k.ptr<T>(), *V = v.ptr<T>();
        const std::int32_t* mask = key_mask.ptr<std::int32_t>();
        T *P = probs.ptr<T>(), *O = ctx.ptr<T>();
        pool.parallel_for(B * NH, [&](std::int64_t t0, std::int64_t t1) {
            T* drop_buf = p > 0 ? thread_workspace(static_cast<std::size_t>(TT)) : nullptr;
            for (std::int64_t t = t0; t < t1; ++t) {
                const std::int64_t b = t / NH, h = t % NH, qo = b * Tq * C + h * HS, ko = b * Tk * C + h * HS;
                T* Pt = P + t * TT;
                gemm(false, true, iq, ik, iHS, scale, Q + qo, iC, K + ko, iC, 0.0, Pt, ik);
                for (std::int64_t i = 0; i < Tq; ++i) {  // causal: keys after i (past the prefix) are never seen
                    const std::int64_t visible = causal ? std::min(Tk, i + (Tk - Tq) + 1) : Tk;
                    masked_softmax_row(Pt + i * Tk, mask + b * Tk, visible);
                    std::fill(Pt + i * Tk + visible, Pt + (i + 1) * Tk, T(0));
                }
                const T* Pd = Pt;
                if (p > 0) {
                    head_dropout(drop_buf, Pt, b, h, Tq, Tk, p, key, example_offset);
                    Pd = drop_buf;
                }
                gemm(false, false, iq, iHS, ik, 1.0, Pd, ik, V + ko, iC, 0.0, O + qo, iC);
            }
        });
    }

    void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v, Tensor probs,
                            int NH, double p, const PhiloxKey& key, int example_offset) {
        const std::int64_t B = q.dim(0), Tq = q.dim(1), Tk = k.dim(1), C = q.dim(2), HS = C / NH, TT = Tq * Tk;
        const int iq = as_int(Tq), ik = as_int(Tk), iC = as_int(C), iHS = as_int(HS);
        const double scale = 1.0 / std::sqrt(double(HS));
        const T *Q = q.ptr<T>(), *K = k.ptr<T>(), *V = v.ptr<T>(), *G = dctx.ptr<T>(), *P = probs.ptr<T>();
        T *DQ = dq.ptr<T>(), *DK = dk.ptr<T>(), *DV = dv.ptr<T>();
        pool.parallel_for(B * NH, [&](std::int64_t t0, std::int64_t t1) {
            T* ws = thread_workspace(static_cast<std::size_t>(2 * TT));  // [dP | dropped P] of one head
            for (std::int64_t t = t0; t < t1; ++t) {
                const std::int64_t b = t / NH, h = t % NH, qo = b * Tq * C + h * HS, ko = b * Tk * C + h * HS;
                const T* Pt = P + t * TT;
                T* dP = ws;
                const T* Pd = Pt;
                if (p > 0) {
                    head_dropout(ws + TT, Pt, b, h, Tq, Tk, p, key, example_offset);
                    Pd = ws + TT;
                }
                gemm(true, false, ik, iHS, iq, 1.0, Pd, ik, G + qo, iC, 0.0, DV + ko, iC);    // dV = Pd^T dctx
                gemm(false, true, iq, ik, iHS, 1.0, G + qo, iC, V + ko, iC, 0.0, dP, ik);     // dPd = dctx V^T
                if (p > 0) {  // dP = mask * dPd, the mask read off Pd (see attention_tiled_backward)
                    const T s = T(1) / (T(1) - T(p));
                    for (std::int64_t e = 0; e < TT; ++e) dP[e] = Pd[e] != T(0) ? dP[e] * s : T(0);
                }
                for (std::int64_t i = 0; i < Tq; ++i) {                                     // dS = P (dP - <P, dP>)
                    const T* pr = Pt + i * Tk;
                    T* gr = dP + i * Tk;
                    T dot = 0;
                    for (std::int64_t j = 0; j < Tk; ++j) dot += pr[j] * gr[j];
                    for (std::int64_t j = 0; j < Tk; ++j) gr[j] = pr[j] * (gr[j] - dot);
                }
                gemm(false, false, iq, iHS, ik, scale, dP, ik, K + ko, iC, 0.0, DQ + qo, iC);  // dQ = dS K / sqrt(HS)
                gemm(true, false, ik, iHS, iq, scale, dP, ik, Q + qo, iC, 0.0, DK + ko, iC);   // dK = dS^T Q / sqrt(HS)
            }
        });
    }

    // ---- tiled attention ----
    // One task per (example, head), as above; within it, blocks of query rows, and for each the
    // key blocks it can see. The scores of a tile are one GEMM; an online softmax keeps per row
    // the running maximum m and sum l of exp(score - m), rescaling the output accumulator when m
    // grows. Dropout draws each kept entry from the counter attention_forward uses for (i, j).
    static bool sees(std::int64_t i, std::int64_t j, const std::int32_t* m, bool causal, std::int64_t shift) {
        return m[j] && (!causal || j <= i + shift);
    }
    // row[j] = exp(row[j] - shift) where visible(j), else exactly 0; returns their sum. float
    // uses the vectorised exponential of the standard softmax (a hidden entry is pushed 200
    // below the shift first, where exp underflows to 0, then set to 0 exactly).
    // Whether every entry of the tile (rows i0.., keys j0..j0+nk) is visible: no padded key, and
    // (causal) even its first row sees its last key. Such tiles skip the per-entry checks.
    static bool tile_visible(const std::int32_t* m, std::int64_t i0, std::int64_t j0, std::int64_t nk, bool causal,
                             std::int64_t shift) {
        if (causal && j0 + nk - 1 > i0 + shift) return false;
        for (std::int64_t j = j0; j < j0 + nk; ++j)
            if (!m[j]) return false;
        return true;
    }
    // row[j] = exp(row[j] - shift) for every j; returns their sum.
    static T exp_all(T* row, std::int64_t n, T shift) {
        if constexpr (std::is_same_v<T, float>) {
            return vecmath::exp_shifted_sum(row, shift, n);
        } else {
            T sum = 0;
            for (std::int64_t j = 0; j < n; ++j) sum += (row[j] = std::exp(row[j] - shift));
            return sum;
        }
    }
    template <typename Visible> static T exp_visible(T* row, std::int64_t n, T shift, Visible visible) {
        if constexpr (std::is_same_v<T, float>) {
            bool hidden = false;
            for (std::int64_t j = 0; j < n; ++j)
                if (!visible(j)) row[j] = shift - T(200), hidden = true;
            const T sum = vecmath::exp_shifted_sum(row, shift, n);
            if (hidden)
                for (std::int64_t j = 0; j < n; ++j)
                    if (!visible(j)) row[j] = T(0);
            return sum;
        } else {
            T sum = 0;
            for (std::int64_t j = 0; j < n; ++j) sum += (row[j] = visible(j) ? std::exp(row[j] - shift) : T(0));
            return sum;
        }
    }

    void attention_tiled_forward(Tensor ctx, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor key_mask, int NH, double p,
                                 const PhiloxKey& key, int example_offset, bool causal) {
        const std::int64_t B = q.dim(0), Tq = q.dim(1), Tk = k.dim(1), C = q.dim(2), HS = C / NH, shift = Tk - Tq;
        const std::int64_t BQ = tile_q.load(), BK = tile_k.load();
        const int iC = as_int(C), iHS = as_int(HS);
        const double scale = 1.0 / std::sqrt(double(HS));
        const T *Q = q.ptr<T>(), *K = k.ptr<T>(), *V = v.ptr<T>();
        const std::int32_t* mask = key_mask.ptr<std::int32_t>();
        T* O = ctx.ptr<T>();
        using L = std::conditional_t<std::is_same_v<T, double>, double, float>;
        L* LSE = lse.ptr<L>();
        const std::uint64_t th = drop_threshold(p);
        const T ds = T(1) / (T(1) - T(p));
        pool.parallel_for(B * NH, [&](std::int64_t t0, std::int64_t t1) {
            T* ws = thread_workspace(cpu_tiled_attention_workspace(HS, false));
            T *S = ws, *acc = S + BQ * BK, *mx = acc + BQ * HS, *sum = mx + BQ;
            for (std::int64_t t = t0; t < t1; ++t) {
                const std::int64_t b = t / NH, h = t % NH, qo = b * Tq * C + h * HS, ko = b * Tk * C + h * HS;
                const std::int32_t* m = mask + b * Tk;
                for (std::int64_t i0 = 0; i0 < Tq; i0 += BQ) {
                    const std::int64_t nq = std::min(BQ, Tq - i0);
                    const std::int64_t kend = causal ? std::min(Tk, i0 + nq + shift) : Tk;
                    std::fill_n(mx, nq, -std::numeric_limits<T>::infinity());
                    std::fill_n(sum, nq, T(0));
                    std::fill_n(acc, nq * HS, T(0));
                    for (std::int64_t j0 = 0; j0 < kend; j0 += BK) {
                        const std::int64_t nk = std::min(BK, kend - j0);
                        const bool full = tile_visible(m, i0, j0, nk, causal, shift);
                        gemm(false, true, as_int(nq), as_int(nk), iHS, scale, Q + qo + i0 * C, iC, K + ko + j0 * C, iC, 0.0, S,
                             as_int(nk));
                        for (std::int64_t r = 0; r < nq; ++r) {
                            const std::int64_t i = i0 + r;
                            T* row = S + r * nk;
                            T top = -std::numeric_limits<T>::infinity();
                            if (full) {
                                for (std::int64_t j = 0; j < nk; ++j) top = std::max(top, row[j]);
                            } else {
                                for (std::int64_t j = 0; j < nk; ++j)
                                    if (sees(i, j0 + j, m, causal, shift)) top = std::max(top, row[j]);
                            }
                            const T m_new = std::max(mx[r], top);
                            if (m_new == -std::numeric_limits<T>::infinity()) {  // nothing visible yet
                                std::fill_n(row, nk, T(0));
                                continue;
                            }
                            if (m_new > mx[r]) {
                                const T f = mx[r] == -std::numeric_limits<T>::infinity() ? T(0) : std::exp(mx[r] - m_new);
                                sum[r] *= f;
                                for (std::int64_t c = 0; c < HS; ++c) acc[r * HS + c] *= f;
                                mx[r] = m_new;
                            }
                            sum[r] += full ? exp_all(row, nk, m_new)
                                           : exp_visible(row, nk, m_new, [&](std::int64_t j) { return sees(i, j0 + j, m, causal, shift); });
                            if (p > 0)
                                dropout_span(row, row, nk, (h * kAttnRowStride + i) * kAttnRowStride + j0,
                                             static_cast<std::uint32_t>(b + example_offset), key, th, ds);
                        }
                        gemm(false, false, as_int(nq), iHS, as_int(nk), 1.0, S, as_int(nk), V + ko + j0 * C, iC, 1.0, acc, iHS);
                    }
                    for (std::int64_t r = 0; r < nq; ++r) {
                        T* out = O + qo + (i0 + r) * C;
                        L& l = LSE[(b * NH + h) * Tq + i0 + r];
                        if (sum[r] == T(0)) {  // every key padding: probabilities 0, as attention_forward
                            std::fill_n(out, HS, T(0));
                            l = std::numeric_limits<L>::infinity();
                            continue;
                        }
                        const T inv = T(1) / sum[r];
                        for (std::int64_t c = 0; c < HS; ++c) out[c] = acc[r * HS + c] * inv;
                        l = static_cast<L>(mx[r] + std::log(sum[r]));
                    }
                }
            }
        });
    }

    void attention_tiled_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                  Tensor key_mask, Tensor ctx, Tensor lse, int NH, double p, const PhiloxKey& key,
                                  int example_offset, bool causal) {
        const std::int64_t B = q.dim(0), Tq = q.dim(1), Tk = k.dim(1), C = q.dim(2), HS = C / NH, shift = Tk - Tq;
        const std::int64_t BQ = tile_q.load(), BK = tile_k.load();
        const int iC = as_int(C), iHS = as_int(HS);
        const double scale = 1.0 / std::sqrt(double(HS));
        const T *Q = q.ptr<T>(), *K = k.ptr<T>(), *V = v.ptr<T>(), *G = dctx.ptr<T>(), *O = ctx.ptr<T>();
        const std::int32_t* mask = key_mask.ptr<std::int32_t>();
        T *DQ = dq.ptr<T>(), *DK = dk.ptr<T>(), *DV = dv.ptr<T>();
        using L = std::conditional_t<std::is_same_v<T, double>, double, float>;
        const L* LSE = lse.ptr<L>();
        const std::uint64_t th = drop_threshold(p);
        const T ds = T(1) / (T(1) - T(p));
        pool.parallel_for(B * NH, [&](std::int64_t t0, std::int64_t t1) {
            T* ws = thread_workspace(cpu_tiled_attention_workspace(HS, true));
            T *P = ws, *Pd = P + BQ * BK, *dP = Pd + BQ * BK, *D = dP + BQ * BK;
            for (std::int64_t t = t0; t < t1; ++t) {
                const std::int64_t b = t / NH, h = t % NH, qo = b * Tq * C + h * HS, ko = b * Tk * C + h * HS;
                const std::int32_t* m = mask + b * Tk;
                for (std::int64_t i = 0; i < Tq; ++i) std::fill_n(DQ + qo + i * C, HS, T(0));  // activation gradients assign
                for (std::int64_t j = 0; j < Tk; ++j) {
                    std::fill_n(DK + ko + j * C, HS, T(0));
                    std::fill_n(DV + ko + j * C, HS, T(0));
                }
                for (std::int64_t i0 = 0; i0 < Tq; i0 += BQ) {
                    const std::int64_t nq = std::min(BQ, Tq - i0);
                    const std::int64_t kend = causal ? std::min(Tk, i0 + nq + shift) : Tk;
                    for (std::int64_t r = 0; r < nq; ++r) {  // D_i = <P_i, dP_i> = <dctx_i, ctx_i>
                        const T *g = G + qo + (i0 + r) * C, *o = O + qo + (i0 + r) * C;
                        T d = 0;
                        for (std::int64_t c = 0; c < HS; ++c) d += g[c] * o[c];
                        D[r] = d;
                    }
                    for (std::int64_t j0 = 0; j0 < kend; j0 += BK) {
                        const std::int64_t nk = std::min(BK, kend - j0);
                        const int inq = as_int(nq), ink = as_int(nk);
                        const bool full = tile_visible(m, i0, j0, nk, causal, shift);
                        gemm(false, true, inq, ink, iHS, scale, Q + qo + i0 * C, iC, K + ko + j0 * C, iC, 0.0, P, ink);
                        for (std::int64_t r = 0; r < nq; ++r) {
                            const std::int64_t i = i0 + r;
                            const T l = static_cast<T>(LSE[(b * NH + h) * Tq + i]);
                            if (std::isinf(l)) std::fill_n(P + r * nk, nk, T(0));  // every key padding
                            else if (full) exp_all(P + r * nk, nk, l);
                            else exp_visible(P + r * nk, nk, l, [&](std::int64_t j) { return sees(i, j0 + j, m, causal, shift); });
                        }
                        const T* Pdrop = P;
                        if (p > 0) {
                            for (std::int64_t r = 0; r < nq; ++r)
                                dropout_span(Pd + r * nk, P + r * nk, nk, (h * kAttnRowStride + i0 + r) * kAttnRowStride + j0,
                                             static_cast<std::uint32_t>(b + example_offset), key, th, ds);
                            Pdrop = Pd;
                        }
                        gemm(true, false, ink, iHS, inq, 1.0, Pdrop, ink, G + qo + i0 * C, iC, 1.0, DV + ko + j0 * C, iC);
                        gemm(false, true, inq, ink, iHS, 1.0, G + qo + i0 * C, iC, V + ko + j0 * C, iC, 0.0, dP, ink);
                        for (std::int64_t r = 0; r < nq; ++r) {
                            T* gr = dP + r * nk;
                            const T* pr = P + r * nk;
                            if (p > 0) {
                                // d(Pdrop) -> dP through the same mask, read off Pd instead of drawn
                                // again: where P != 0, Pd = P·ds != 0 exactly when the entry was kept;
                                // where P = 0 the entry's dS is 0 whatever the mask.
                                const T* dr = Pd + r * nk;
                                for (std::int64_t j = 0; j < nk; ++j) gr[j] = pr[j] * ((dr[j] != T(0) ? gr[j] * ds : T(0)) - D[r]);
                            } else {
                                for (std::int64_t j = 0; j < nk; ++j) gr[j] = pr[j] * (gr[j] - D[r]);  // dS
                            }
                        }
                        gemm(false, false, inq, iHS, ink, scale, dP, ink, K + ko + j0 * C, iC, 1.0, DQ + qo + i0 * C, iC);
                        gemm(true, false, ink, iHS, inq, scale, dP, ink, Q + qo + i0 * C, iC, 1.0, DK + ko + j0 * C, iC);
                    }
                }
            }
        });
    }

    // out[B,P+T,C] = [prefix (the same for every example); x]
    void prefix_concat_forward(Tensor out, Tensor prefix, Tensor x) {
        const std::int64_t B = x.dim(0), T_ = x.dim(1), C = x.dim(2), P_ = prefix.dim(0);
        const T *pr = prefix.ptr<T>(), *xs = x.ptr<T>();
        T* o = out.ptr<T>();
        for (std::int64_t b = 0; b < B; ++b) {
            std::memcpy(o + b * (P_ + T_) * C, pr, sizeof(T) * P_ * C);
            std::memcpy(o + (b * (P_ + T_) + P_) * C, xs + b * T_ * C, sizeof(T) * T_ * C);
        }
    }
    // dprefix[P,C] += sum over examples of dout[b, :P]; dx[B,T,C] (+)= dout[:, P:]
    void prefix_concat_backward(Tensor dprefix, Tensor dx, Tensor dout, bool acc) {
        const std::int64_t B = dx.dim(0), T_ = dx.dim(1), C = dx.dim(2), P_ = dout.dim(1) - T_;
        const T* g = dout.ptr<T>();
        T* d = dx.ptr<T>();
        if (dprefix) {
            T* dp = dprefix.ptr<T>();
            for (std::int64_t b = 0; b < B; ++b)
                for (std::int64_t i = 0; i < P_ * C; ++i) dp[i] += g[b * (P_ + T_) * C + i];
        }
        for (std::int64_t b = 0; b < B; ++b)
            for (std::int64_t i = 0; i < T_ * C; ++i) {
                const T v = g[(b * (P_ + T_) + P_) * C + i];
                d[b * T_ * C + i] = acc ? d[b * T_ * C + i] + v : v;
            }
    }

    void cross_entropy_forward(Tensor losses, Tensor probs, Tensor logits, Tensor labels) {
        const std::int64_t B = logits.dim(0), K = logits.dim(1);
        const T* z = logits.ptr<T>();
        const std::int32_t* y = labels.ptr<std::int32_t>();
        T *pr = probs.ptr<T>(), *l = losses.ptr<T>();
        for (std::int64_t b = 0; b < B; ++b) {
            MEFT_CHECK(y[b] < K, "label out of range");
            const T* zr = z + b * K;
            const T mx = *std::max_element(zr, zr + K);
            T sum = 0;
            for (std::int64_t j = 0; j < K; ++j) sum += std::exp(zr[j] - mx);
            for (std::int64_t j = 0; j < K; ++j) pr[b * K + j] = std::exp(zr[j] - mx) / sum;
            l[b] = y[b] < 0 ? T(0) : std::log(sum) + mx - zr[y[b]];  // negative: an ignored row
        }
    }
    void cross_entropy_backward(Tensor dlogits, Tensor probs, Tensor labels, double scale) {
        const std::int64_t B = probs.dim(0), K = probs.dim(1);
        const T* pr = probs.ptr<T>();
        const std::int32_t* y = labels.ptr<std::int32_t>();
        T* d = dlogits.ptr<T>();
        for (std::int64_t b = 0; b < B; ++b)
            for (std::int64_t j = 0; j < K; ++j)
                d[b * K + j] = y[b] < 0 ? T(0) : (pr[b * K + j] - (j == y[b] ? T(1) : T(0))) * T(scale);
    }
    void mse_forward(Tensor losses, Tensor preds, Tensor targets) {
        const T *x = preds.ptr<T>(), *t = targets.ptr<T>();
        T* l = losses.ptr<T>();
        for (std::int64_t b = 0; b < preds.dim(0); ++b) l[b] = (x[b] - t[b]) * (x[b] - t[b]);
    }
    void mse_backward(Tensor dpreds, Tensor preds, Tensor targets, double scale) {
        const T *x = preds.ptr<T>(), *t = targets.ptr<T>();
        T* d = dpreds.ptr<T>();
        for (std::int64_t b = 0; b < preds.dim(0); ++b) d[b] = T(2) * (x[b] - t[b]) * T(scale);
    }

    void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double b1, double b2, double eps,
                      double wd, int step) {
        T *pp = param.ptr<T>(), *mm = m.ptr<T>(), *vv = v.ptr<T>();
        const T* g = grad.ptr<T>();
        const T bc1 = T(1) - T(std::pow(b1, step)), bc2 = T(1) - T(std::pow(b2, step));
        const T step_size = T(lr) / bc1, decay = T(1) - T(lr * wd), sqrt_bc2 = std::sqrt(bc2);
        const T tb1 = T(b1), tb2 = T(b2), teps = T(eps);
        pool.parallel_for(param.numel(), [=](std::int64_t i0, std::int64_t i1) {
            // Local restrict pointers: the four tensors are distinct, so the loop vectorises.
            T* __restrict p = pp + i0;
            T* __restrict m1 = mm + i0;
            T* __restrict m2 = vv + i0;
            const T* __restrict gi = g + i0;
            for (std::int64_t i = 0; i < i1 - i0; ++i) {
                m1[i] = tb1 * m1[i] + (T(1) - tb1) * gi[i];
                m2[i] = tb2 * m2[i] + (T(1) - tb2) * gi[i] * gi[i];
                p[i] = p[i] * decay - step_size * m1[i] / (std::sqrt(m2[i]) / sqrt_bc2 + teps);
            }
        }, 4096);
    }
};

class CpuBackend final : public Backend {
public:
    CpuBackend(ThreadPool& pool, bool bf16_gemm) : pool_(pool), bf16_gemm_(bf16_gemm) { openblas_set_num_threads(1); }

    std::string name() const override { return "cpu"; }
    MemorySource memory() override { return MemorySource::host(); }
    std::size_t op_workspace_bytes() const override {
        return cpu_workspace_bytes.load() + bf16_.size * sizeof(std::uint16_t);
    }
    bool is_host() const override { return true; }

    void upload(Tensor dst, const void* src) override { std::memcpy(dst.data, src, dst.bytes()); }
    void download(void* dst, Tensor src) override { std::memcpy(dst, src.data, src.bytes()); }

private:  // the ops: Backend checks their arguments, then calls these
    void fill_impl(Tensor t, double value) override {
        dispatch(t, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            std::fill_n(t.ptr<T>(), t.numel(), T(value));
        });
    }
    void copy_impl(Tensor dst, Tensor src) override {
        if (dst.data != src.data) std::memcpy(dst.data, src.data, src.bytes());
    }
    void accumulate_impl(Tensor dst, Tensor src) override {
        dispatch(dst, [&](auto ops) { ops.get().map3(dst, dst, src, [](auto a, auto b) { return a + b; }); });
    }
    void axpy_impl(Tensor dst, Tensor src, double alpha) override {
        dispatch(dst, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            const T a = T(alpha);
            ops.get().map3(dst, dst, src, [a](T x, T y) { return x + a * y; });
        });
    }
    void channel_scale_forward_impl(Tensor out, Tensor inp, Tensor scale) override {
        dispatch(out, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            const std::int64_t C = scale.numel(), N = inp.numel() / C;
            const T *x = inp.ptr<T>(), *s = scale.ptr<T>();
            T* o = out.ptr<T>();
            pool_.parallel_for(N, [&](std::int64_t r0, std::int64_t r1) {
                for (std::int64_t r = r0; r < r1; ++r)
                    for (std::int64_t c = 0; c < C; ++c) o[r * C + c] = x[r * C + c] * s[c];
            }, 16);
        });
    }
    void channel_scale_backward_impl(Tensor dinp, Tensor dscale, Tensor dout, Tensor inp, Tensor scale) override {
        dispatch(dout, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            const std::int64_t C = scale.numel(), N = dout.numel() / C;
            const T *g = dout.ptr<T>(), *x = inp.ptr<T>(), *s = scale.ptr<T>();
            if (dscale) {
                T* ds = dscale.ptr<T>();
                pool_.parallel_for(C, [&](std::int64_t c0, std::int64_t c1) {
                    for (std::int64_t r = 0; r < N; ++r)
                        for (std::int64_t c = c0; c < c1; ++c) ds[c] += g[r * C + c] * x[r * C + c];
                }, 64);
            }
            if (dinp) {
                T* d = dinp.ptr<T>();
                pool_.parallel_for(N, [&](std::int64_t r0, std::int64_t r1) {
                    for (std::int64_t r = r0; r < r1; ++r)
                        for (std::int64_t c = 0; c < C; ++c) d[r * C + c] = g[r * C + c] * s[c];
                }, 16);
            }
        });
    }
    void add_impl(Tensor out, Tensor a, Tensor b) override {
        dispatch(out, [&](auto ops) { ops.get().map3(out, a, b, [](auto x, auto y) { return x + y; }); });
    }
    void scale_impl(Tensor t, double s) override {
        dispatch(t, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            ops.get().map2(t, t, [s](T x) { return x * T(s); });
        });
    }
    double sum_squares_impl(Tensor t) override {
        constexpr int kParts = 64;  // fixed split: the sum does not depend on the thread count
        double partial[kParts] = {};
        dispatch(t, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            const T* x = t.ptr<T>();
            const std::int64_t n = t.numel();
            pool_.parallel_for(kParts, [&](std::int64_t p0, std::int64_t p1) {
                for (std::int64_t p = p0; p < p1; ++p) {
                    // Eight running sums in a fixed order (so the loop vectorises), added at the end.
                    constexpr int kLanes = 8;
                    double lane[kLanes] = {};
                    std::int64_t i = n * p / kParts;
                    const std::int64_t end = n * (p + 1) / kParts;
                    for (; i + kLanes <= end; i += kLanes)
                        for (int j = 0; j < kLanes; ++j) lane[j] += double(x[i + j]) * double(x[i + j]);
                    double s = 0;
                    for (; i < end; ++i) s += double(x[i]) * double(x[i]);
                    for (int j = 0; j < kLanes; ++j) s += lane[j];
                    partial[p] = s;
                }
            });
        });
        double total = 0;
        for (double s : partial) total += s;
        return total;
    }

    void linear_forward_impl(Tensor out, Tensor inp, Tensor w, Tensor b) override {
        dispatch(out, [&](auto ops) { ops.get().linear_forward(out, inp, w, b); });
    }
    void linear_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, bool acc) override {
        dispatch(dout, [&](auto ops) { ops.get().linear_backward(dinp, dw, db, dout, inp, w, acc); });
    }
    void layernorm_forward_impl(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor w, Tensor b, double eps) override {
        dispatch(out, [&](auto ops) { ops.get().layernorm_forward(out, mean, rstd, inp, w, b, eps); });
    }
    void layernorm_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, Tensor mean,
                                 Tensor rstd, bool acc) override {
        dispatch(dout, [&](auto ops) { ops.get().layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, acc); });
    }
    void gelu_forward_impl(Tensor out, Tensor inp) override {
        dispatch(out, [&](auto ops) { ops.get().gelu_forward(out, inp); });
    }
    void gelu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) override {
        dispatch(dout, [&](auto ops) { ops.get().gelu_backward(dinp, dout, inp); });
    }
    void tanh_forward_impl(Tensor out, Tensor inp) override {
        dispatch(out, [&](auto ops) { ops.get().tanh_forward(out, inp); });
    }
    void tanh_backward_impl(Tensor dinp, Tensor dout, Tensor out) override {
        dispatch(dout, [&](auto ops) { ops.get().tanh_backward(dinp, dout, out); });
    }
    void relu_forward_impl(Tensor out, Tensor inp) override {
        dispatch(out, [&](auto ops) { ops.get().relu_forward(out, inp); });
    }
    void relu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) override {
        dispatch(dout, [&](auto ops) { ops.get().relu_backward(dinp, dout, inp); });
    }
    void dropout_forward_impl(Tensor out, Tensor inp, double p, PhiloxKey key, int off) override {
        dispatch(out, [&](auto ops) { ops.get().dropout(out, inp, p, key, off); });
    }
    void dropout_backward_impl(Tensor dinp, Tensor dout, double p, PhiloxKey key, int off) override {
        dispatch(dout, [&](auto ops) { ops.get().dropout(dinp, dout, p, key, off); });
    }
    void dropout_add_layernorm_forward_impl(Tensor out, Tensor mean, Tensor rstd, Tensor res, Tensor x, Tensor w, Tensor b,
                                            double eps, double p, PhiloxKey key, int off) override {
        dispatch(res, [&](auto ops) { ops.get().dropout_add_layernorm(out, mean, rstd, res, x, w, b, eps, p, key, off); });
    }
    void layernorm_dropout_backward_impl(Tensor dbranch, Tensor dres, Tensor dw, Tensor db, Tensor dout, Tensor res,
                                         Tensor w, Tensor mean, Tensor rstd, double p, PhiloxKey key, int off) override {
        dispatch(res, [&](auto ops) {
            ops.get().layernorm_dropout_backward(dbranch, dres, dw, db, dout, res, w, mean, rstd, p, key, off);
        });
    }
    void embeddings_forward_impl(Tensor out, Tensor ids, Tensor pos, Tensor types, Tensor wte, Tensor wpe,
                                 Tensor wtt) override {
        dispatch(out, [&](auto ops) { ops.get().embeddings_forward(out, ids, pos, types, wte, wpe, wtt); });
    }
    void embedding_backward_impl(Tensor dtable, Tensor dout, Tensor ids) override {
        dispatch(dout, [&](auto ops) { ops.get().embedding_backward(dtable, dout, ids); });
    }
    void attention_forward_impl(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor key_mask, int n_head,
                                double p, PhiloxKey key, int off, bool causal) override {
        dispatch(ctx, [&](auto ops) { ops.get().attention_forward(ctx, probs, q, k, v, key_mask, n_head, p, key, off, causal); });
    }
    void attention_tiled_forward_impl(Tensor ctx, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor key_mask, int n_head,
                                      double p, PhiloxKey key, int off, bool causal) override {
        dispatch(ctx, [&](auto ops) { ops.get().attention_tiled_forward(ctx, lse, q, k, v, key_mask, n_head, p, key, off, causal); });
    }
    void attention_tiled_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                       Tensor key_mask, Tensor ctx, Tensor lse, int n_head, double p, PhiloxKey key, int off,
                                       bool causal) override {
        dispatch(ctx, [&](auto ops) {
            ops.get().attention_tiled_backward(dq, dk, dv, dctx, q, k, v, key_mask, ctx, lse, n_head, p, key, off, causal);
        });
    }
    void attention_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v, Tensor probs,
                                 int n_head, double p, PhiloxKey key, int off) override {
        dispatch(dctx, [&](auto ops) {
            ops.get().attention_backward(dq, dk, dv, dctx, q, k, v, probs, n_head, p, key, off);
        });
    }
    void prefix_concat_forward_impl(Tensor out, Tensor prefix, Tensor x) override {
        dispatch(out, [&](auto ops) { ops.get().prefix_concat_forward(out, prefix, x); });
    }
    void prefix_concat_backward_impl(Tensor dprefix, Tensor dx, Tensor dout, bool acc) override {
        dispatch(dout, [&](auto ops) { ops.get().prefix_concat_backward(dprefix, dx, dout, acc); });
    }
    void copy_columns_impl(Tensor dst, Tensor src, std::int64_t first) override {
        const std::int64_t R = dst.dim(0), c = dst.dim(1), C = src.dim(1);
        const std::size_t es = dtype_size(dst.dtype);
        for (std::int64_t r = 0; r < R; ++r)
            std::memcpy(static_cast<char*>(dst.data) + static_cast<std::size_t>(r * c) * es,
                        static_cast<const char*>(src.data) + static_cast<std::size_t>(r * C + first) * es,
                        static_cast<std::size_t>(c) * es);
    }
    // Row norms summed in double whatever the dtype.
    void weight_norm_forward_impl(Tensor g, Tensor norm, Tensor m, Tensor w) override {
        dispatch(w, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            const std::int64_t R = w.dim(0), C = w.dim(1);
            const T *wp = w.ptr<T>(), *mp = m.ptr<T>();
            T *gp = g.ptr<T>(), *np = norm.ptr<T>();
            pool_.parallel_for(R, [&](std::int64_t r0, std::int64_t r1) {
                for (std::int64_t r = r0; r < r1; ++r) {
                    double ss = 0;
                    for (std::int64_t j = 0; j < C; ++j) ss += double(wp[r * C + j]) * double(wp[r * C + j]);
                    const T n = T(std::sqrt(ss));  // g = m / n exactly 1 when m holds this norm
                    np[r] = n;
                    gp[r] = T(double(mp[r]) / double(n));
                }
            }, 16);
        });
    }
    void weight_norm_backward_impl(Tensor dm, Tensor dw, Tensor dg, Tensor m, Tensor w, Tensor norm) override {
        dispatch(w, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            const std::int64_t R = w.dim(0), C = w.dim(1);
            const T *wp = w.ptr<T>(), *mp = m.ptr<T>(), *gp = dg.ptr<T>(), *np = norm.ptr<T>();
            T* dmp = dm.ptr<T>();
            T* dwp = dw ? dw.ptr<T>() : nullptr;
            pool_.parallel_for(R, [&](std::int64_t r0, std::int64_t r1) {
                for (std::int64_t r = r0; r < r1; ++r) {
                    const double n = double(np[r]);
                    dmp[r] += T(double(gp[r]) / n);
                    if (!dwp) continue;
                    const double f = -double(gp[r]) * double(mp[r]) / (n * n * n);
                    for (std::int64_t j = 0; j < C; ++j) dwp[r * C + j] = T(f * double(wp[r * C + j]));
                }
            }, 16);
        });
    }
    void first_token_forward_impl(Tensor out, Tensor inp) override {
        const std::int64_t B = inp.dim(0), TC = inp.numel() / B, C = inp.dim(-1);
        const std::size_t row = static_cast<std::size_t>(C) * dtype_size(inp.dtype);
        for (std::int64_t b = 0; b < B; ++b)
            std::memcpy(static_cast<char*>(out.data) + b * row,
                        static_cast<const char*>(inp.data) + static_cast<std::size_t>(b * TC) * dtype_size(inp.dtype), row);
    }
    void first_token_backward_impl(Tensor dinp, Tensor dout, bool acc) override {
        if (!acc) fill(dinp, 0.0);
        dispatch(dout, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            const std::int64_t B = dinp.dim(0), TC = dinp.numel() / B, C = dinp.dim(-1);
            T* d = dinp.ptr<T>();
            const T* g = dout.ptr<T>();
            for (std::int64_t b = 0; b < B; ++b)
                for (std::int64_t c = 0; c < C; ++c) d[b * TC + c] += g[b * C + c];
        });
    }
    void cross_entropy_forward_impl(Tensor losses, Tensor probs, Tensor logits, Tensor labels) override {
        dispatch(logits, [&](auto ops) { ops.get().cross_entropy_forward(losses, probs, logits, labels); });
    }
    void cross_entropy_backward_impl(Tensor dlogits, Tensor probs, Tensor labels, double scale) override {
        dispatch(probs, [&](auto ops) { ops.get().cross_entropy_backward(dlogits, probs, labels, scale); });
    }
    void mse_forward_impl(Tensor losses, Tensor preds, Tensor targets) override {
        dispatch(preds, [&](auto ops) { ops.get().mse_forward(losses, preds, targets); });
    }
    void mse_backward_impl(Tensor dpreds, Tensor preds, Tensor targets, double scale) override {
        dispatch(preds, [&](auto ops) { ops.get().mse_backward(dpreds, preds, targets, scale); });
    }
    void coupling_forward_impl(Tensor stream, Tensor rem, Tensor f, int m) override {
        coupling(stream, rem, f, m, false);
    }
    void coupling_inverse_impl(Tensor stream, Tensor rem, Tensor f, int m) override {
        coupling(stream, rem, f, m, true);
    }
    void stream_read_impl(Tensor out, Tensor stream) override {
        dispatch(out, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            T* o = out.ptr<T>();
            const std::int64_t n = out.numel();
            if (stream.dtype == DType::F64) {
                const double* x = stream.ptr<double>();
                pool_.parallel_for(n, [&](std::int64_t i0, std::int64_t i1) {
                    for (std::int64_t i = i0; i < i1; ++i) o[i] = T(x[i]);
                }, 4096);
            } else {
                const std::int64_t* x = stream.ptr<std::int64_t>();
                const double s = std::ldexp(1.0, -kStreamFractionBits);
                pool_.parallel_for(n, [&](std::int64_t i0, std::int64_t i1) {
                    for (std::int64_t i = i0; i < i1; ++i) o[i] = T(double(x[i]) * s);
                }, 4096);
            }
        });
    }
    void stream_write_impl(Tensor stream, Tensor in) override {
        dispatch(in, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            const T* v = in.ptr<T>();
            const std::int64_t n = in.numel();
            if (stream.dtype == DType::F64) {
                double* x = stream.ptr<double>();
                for (std::int64_t i = 0; i < n; ++i) x[i] = double(v[i]);
            } else {
                std::int64_t* x = stream.ptr<std::int64_t>();
                for (std::int64_t i = 0; i < n; ++i) x[i] = to_fixed(double(v[i]));
            }
        });
    }

    void adamw_update_impl(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double b1, double b2, double eps,
                           double wd, int step) override {
        dispatch(param, [&](auto ops) { ops.get().adamw_update(param, grad, m, v, lr, b1, b2, eps, wd, step); });
    }

private:
    [[noreturn]] static void out_of_range(double v) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "MEFT stream value %.6g is outside the exact fixed-point range |value| < 2^23 = %.0f",
                      v, kStreamLimit);
        throw StreamRangeError(buf, v);
    }
    static std::int64_t to_fixed(double v) {
        std::int64_t q = 0;
        if (!stream_to_fixed(v, &q)) out_of_range(v);
        return q;
    }

    // Shared body of coupling_forward / coupling_inverse (see backend.h).
    void coupling(Tensor stream, Tensor rem, Tensor f, int m, bool inverse) {
        dispatch(f, [&](auto ops) {
            using T = typename decltype(ops)::Scalar;
            const T* fv = f.ptr<T>();
            const std::int64_t n = f.numel();
            if (stream.dtype == DType::F64) {
                double* x = stream.ptr<double>();
                const double dm = m;
                for (std::int64_t i = 0; i < n; ++i) x[i] = inverse ? (x[i] - double(fv[i])) * dm : x[i] / dm + double(fv[i]);
                return;
            }
            std::int64_t* x = stream.ptr<std::int64_t>();
            std::uint8_t* r = (m > 1 && rem.data) ? rem.ptr_u8() : nullptr;  // none: vanilla layers discard it
            const int bits = remainder_bits(m), per_byte = 8 / bits;
            const std::uint8_t mask = static_cast<std::uint8_t>((1u << bits) - 1u);
            // Whole bytes of packed remainders per task, so no two tasks write one byte.
            const std::int64_t chunk = 4096 * per_byte;
            pool_.parallel_for((n + chunk - 1) / chunk, [&](std::int64_t c0, std::int64_t c1) {
                for (std::int64_t i = c0 * chunk; i < std::min(n, c1 * chunk); ++i) {
                    const std::int64_t q = to_fixed(double(fv[i]));
                    const std::int64_t byte = i / per_byte, shift = (i % per_byte) * bits;
                    if (!inverse) {
                        std::int64_t rr = 0;
                        if (!stream_couple(&x[i], q, m, &rr)) out_of_range(stream_value(x[i]) / m + double(fv[i]));
                        if (r) r[byte] = static_cast<std::uint8_t>((r[byte] & ~(mask << shift)) | (rr << shift));
                    } else {
                        const std::int64_t rr = r ? (r[byte] >> shift) & mask : 0;
                        x[i] = stream_uncouple(x[i], q, m, rr);
                    }
                }
            });
        });
    }

    template <typename T> struct Handle {
        using Scalar = T;
        Ops<T>* ops;
        Ops<T>& get() const { return *ops; }
    };
    template <typename F> void dispatch(const Tensor& t, F&& f) {
        if (t.dtype == DType::F32) {
            Ops<float> ops{pool_, bf16_gemm_ ? &bf16_ : nullptr};
            f(Handle<float>{&ops});
        } else if (t.dtype == DType::F64) {
            Ops<double> ops{pool_};
            f(Handle<double>{&ops});
        } else {
            throw Error(std::string("cpu backend: unsupported dtype ") + std::string(dtype_name(t.dtype)));
        }
    }

    ThreadPool& pool_;
    const bool bf16_gemm_;
    Bf16Operands bf16_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options, ThreadPool& pool) {
    static const bool from_environment = [] {  // MEFT_CPU_GEMM, read once
        if (const char* v = std::getenv("MEFT_CPU_GEMM"); v && *v) set_cpu_gemm(parse_cpu_gemm(v));
        return true;
    }();
    (void)from_environment;
    if (options.bf16_gemm) {
        std::string why;
        if (!cpu_bf16_gemm_available(&why)) throw Error("bf16 GEMMs (gemm precision \"bf16\") on the CPU backend: " + why);
    }
    return std::make_unique<CpuBackend>(pool, options.bf16_gemm);
}

CpuGemm parse_cpu_gemm(const std::string& name) {
    if (name == "openblas") return CpuGemm::OpenBlas;
    if (name == "onednn") {
        if (!cpu_gemm_available(CpuGemm::OneDnn))
            throw Error("MEFT_CPU_GEMM=onednn: this build has no oneDNN (install libdnnl-dev and rebuild), use openblas");
        return CpuGemm::OneDnn;
    }
    throw Error("MEFT_CPU_GEMM: expected \"openblas\" or \"onednn\", found \"" + name + "\"");
}

bool cpu_gemm_available(CpuGemm g) {
#if defined(MEFT_HAVE_ONEDNN)
    (void)g;
    return true;
#else
    return g == CpuGemm::OpenBlas;
#endif
}

CpuGemm cpu_gemm() { return sgemm_library.load(); }

CpuGemmStats cpu_gemm_stats() {
    return {double(gemm_ns.load()) * 1e-9, double(gemm_flops.load()), gemm_calls.load()};
}

void set_cpu_gemm(CpuGemm g) {
    if (!cpu_gemm_available(g)) throw Error("this build has no oneDNN: float32 GEMMs run on OpenBLAS");
    sgemm_library = g;
}

const char* cpu_gemm_name(CpuGemm g) { return g == CpuGemm::OneDnn ? "onednn" : "openblas"; }

AttentionTiles cpu_attention_tiles() { return {tile_q.load(), tile_k.load()}; }

void set_cpu_attention_tiles(AttentionTiles tiles) {
    if (tiles.q < 1 || tiles.k < 1) throw Error("attention tiles must be at least 1 x 1");
    tile_q = tiles.q;
    tile_k = tiles.k;
}

std::size_t cpu_tiled_attention_workspace(std::int64_t head_size, bool backward) {
    const std::size_t q = static_cast<std::size_t>(tile_q.load()), k = static_cast<std::size_t>(tile_k.load());
    const std::size_t hs = static_cast<std::size_t>(head_size);
    return backward ? 3 * q * k + q : q * k + q * hs + 2 * q;  // [P | dropped P | dP], D  or  S, output rows, max, sum
}

}  // namespace meft
