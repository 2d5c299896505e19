// attention_tiled.cu — tiled attention that never holds the [Tq, Tk] probabilities (the CUDA side
// of Backend::attention_tiled_forward/backward; the CPU reference is in core/cpu_backend.cpp).
//
// Forward: one block per (example, head, tile of query rows). The query tile stays in shared
// memory; the block walks the key tiles its rows can see, and an online softmax keeps per row the
// running maximum m and sum l of exp(score - m), rescaling the output accumulator (registers) when
// m grows. Out: ctx, and lse = m + log l per row (+inf for a row whose keys are all padding, whose
// context is 0).
//
// Backward, in three launches with no atomics (the same bits every run):
//   1. D_i = <dctx_i, ctx_i> per query row (= <P_i, dP_i>, the softmax backward's row sums);
//   2. one block per (example, head, tile of keys): dk, dv of its keys, over the query tiles that
//      see them;
//   3. one block per (example, head, tile of queries): dq of its rows, over the key tiles they see.
// Each recomputes a tile's probabilities P = exp(score - lse) and its dropout mask from the Philox
// counters attention_forward draws ((h*S + i)*S + j of example b + example_offset, dropout.cu), so
// the dropped entries are the standard attention's.
//
// Head sizes up to kMaxHead. Tiles are padded to HS + 1 columns in shared memory (a column read
// across a warp then hits distinct banks); every block stays within 48 KiB of static shared memory.
#include <cmath>
#include <limits>
#include <string>

#include "common.cuh"
#include "core/backend.h"
#include "ops.h"

namespace meft::cuda {

// Dropout of attention probabilities: on = p > 0 (then keep with probability 1 - p, scaled by s).
// Outside the anonymous namespace: the launchers' lambdas (MEFT_LAUNCH) capture one.
template <typename T> struct TiledDrop {
    PhiloxKey key;
    std::uint64_t threshold;
    T s;
    bool on;
};

namespace {

constexpr int kMaxHead = 128;
constexpr int kLd = kMaxHead + 1;             // shared rows of a head: up to HS + 1 elements
constexpr int kTileThreads = 128;             // 4 warps per block
constexpr int kTileWarps = kTileThreads / kWarp;
constexpr int kColsPerLane = kMaxHead / kWarp;  // output columns d = lane + 32 * cc, cc < 4
constexpr i64 kS = kAttentionDropoutStride;

// Rows per tile, by element type. Forward: query rows x key rows. Backward: the block's own
// ("fixed") rows, keys for dk/dv and queries for dq, x the other side's rows streamed through.
template <typename T> struct Tiles;
template <> struct Tiles<float> {
    static constexpr int kQ = 32, kK = 32, kFixed = 32, kStream = 16;
};
template <> struct Tiles<double> {
    static constexpr int kQ = 16, kK = 16, kFixed = 16, kStream = 8;
};

// The static shared memory of each kernel (the arrays declared in it), checked against 48 KiB.
template <typename T> constexpr std::size_t forward_shared_bytes() {
    constexpr int BQ = Tiles<T>::kQ, BK = Tiles<T>::kK;
    return sizeof(T) * (std::size_t(BQ + BK) * kLd + BQ * (BK + 1) + 3 * BQ);
}
template <typename T> constexpr std::size_t backward_shared_bytes() {  // the larger of dk/dv's and dq's
    constexpr int F = Tiles<T>::kFixed, S = Tiles<T>::kStream;
    constexpr int scores = S * (F + 1) > F * (S + 1) ? S * (F + 1) : F * (S + 1);
    return sizeof(T) * (std::size_t(2 * F + S) * kLd + 2 * scores + 2 * F) + std::size_t(F) * S;
}
static_assert(forward_shared_bytes<float>() <= 48 * 1024 && forward_shared_bytes<double>() <= 48 * 1024);
static_assert(backward_shared_bytes<float>() <= 48 * 1024 && backward_shared_bytes<double>() <= 48 * 1024);

__device__ __forceinline__ i64 lesser(i64 a, i64 b) { return a < b ? a : b; }
template <typename T> __device__ __forceinline__ T plus_inf() { return static_cast<T>(INFINITY); }

// Whether element (i, j) of head h of example `example` (b + example_offset) is kept.
template <typename T> __device__ __forceinline__ bool kept(const TiledDrop<T>& d, i64 example, i64 h, i64 i, i64 j) {
    const i64 e = (h * kS + i) * kS + j;
    const PhiloxWords r = philox_block(d.key, static_cast<std::uint32_t>(example), static_cast<std::uint32_t>(e >> 2));
    return dropout_keeps(r[static_cast<int>(e & 3)], d.threshold);
}

// tile[r * ld + d] = src[(row0 + r) * C + d] for r < R, d < HS; rows at or past n are zero.
// src points at the head's column 0 of the example's row 0.
template <typename T, int R>
__device__ void load_rows(T* tile, int ld, const T* src, i64 C, i64 row0, i64 n, int HS) {
    for (int e = threadIdx.x; e < R * HS; e += kTileThreads) {
        const int r = e / HS, d = e % HS;
        tile[r * ld + d] = r < n ? src[(row0 + r) * C + d] : T(0);
    }
}

// Dot products of an R x Cn tile: this thread's column c = tid % Cn against rows
// r_s = tid / Cn + kRowStep * s of `rows` (out[s] = <rows[r_s], cols[c]>).
template <typename T, int R, int Cn> struct TileDots {
    static constexpr int kRowStep = kTileThreads / Cn, kPerThread = R / kRowStep;
    static_assert(kTileThreads % Cn == 0 && R % kRowStep == 0, "tile shape does not fit the block");
    __device__ static int col() { return threadIdx.x % Cn; }
    __device__ static int row(int s) { return threadIdx.x / Cn + kRowStep * s; }
    __device__ static void dots(T (&out)[kPerThread], const T* rows, const T* cols, int ld, int HS) {
        for (int s = 0; s < kPerThread; ++s) out[s] = T(0);
        const T* cr = cols + col() * ld;
        const T* r0 = rows + row(0) * ld;
        for (int d = 0; d < HS; ++d) {
            const T b = cr[d];
            for (int s = 0; s < kPerThread; ++s) out[s] += r0[s * kRowStep * ld + d] * b;
        }
    }
};

// Output accumulators of an A x HS tile held in registers: this thread owns rows
// a = warp + kTileWarps * ia and columns d = lane + 32 * cc (d < HS).
template <typename T, int A> struct Acc {
    static constexpr int kRows = A / kTileWarps;
    static_assert(A % kTileWarps == 0, "tile rows do not fit the block's warps");
    T v[kRows][kColsPerLane] = {};
    __device__ static int row(int ia) { return static_cast<int>(threadIdx.x) / kWarp + kTileWarps * ia; }
    __device__ static int col(int cc) { return static_cast<int>(threadIdx.x) % kWarp + kWarp * cc; }
    // v[a][d] += sum_{k < K} w(a, k) * x[k * ld + d]
    template <int K, typename W> __device__ void add(W w, const T* x, int ld, int HS) {
        for (int k = 0; k < K; ++k) {
            T xv[kColsPerLane];
            for (int cc = 0; cc < kColsPerLane; ++cc) xv[cc] = col(cc) < HS ? x[k * ld + col(cc)] : T(0);
            for (int ia = 0; ia < kRows; ++ia) {
                const T wk = w(row(ia), k);
                for (int cc = 0; cc < kColsPerLane; ++cc) v[ia][cc] += wk * xv[cc];
            }
        }
    }
    // out[(row0 + a) * C + d] = v[a][d] * f(a) for rows a < n
    template <typename F> __device__ void store(T* out, i64 C, i64 row0, i64 n, int HS, F f) const {
        for (int ia = 0; ia < kRows; ++ia) {
            if (row(ia) >= n) continue;
            const T s = f(row(ia));
            for (int cc = 0; cc < kColsPerLane; ++cc)
                if (col(cc) < HS) out[(row0 + row(ia)) * C + col(cc)] = v[ia][cc] * s;
        }
    }
};

// ---- forward ------------------------------------------------------------------------------------

// Block: query rows [i0, i0 + BQ) of head h of example b (blockIdx.x = (b*NH + h) * tiles + tile).
template <typename T>
__global__ void tiled_forward_kernel(T* ctx, T* lse, const T* q, const T* k, const T* v, const std::int32_t* mask, i64 NH,
                                     i64 Tq, i64 Tk, i64 C, int HS, T scale, bool causal, TiledDrop<T> drop, int off) {
    constexpr int BQ = Tiles<T>::kQ, BK = Tiles<T>::kK, LS = BK + 1;
    using Dots = TileDots<T, BQ, BK>;
    __shared__ T qs[BQ * kLd], kv[BK * kLd];  // the query tile; the key tile, then the value tile
    __shared__ T ps[BQ * LS];                 // scores, then exp(score - m), dropped
    __shared__ T row_max[BQ], row_sum[BQ], rescale[BQ];
    const i64 tiles = (Tq + BQ - 1) / BQ, bh = blockIdx.x / tiles, i0 = (blockIdx.x % tiles) * BQ;
    const i64 b = bh / NH, h = bh % NH, nq = lesser(BQ, Tq - i0), shift = Tk - Tq;
    const i64 kend = causal ? lesser(Tk, i0 + nq + shift) : Tk;  // keys at or past kend are never seen
    const T* qh = q + b * Tq * C + h * HS;
    const T *kh = k + b * Tk * C + h * HS, *vh = v + b * Tk * C + h * HS;
    const std::int32_t* m = mask + b * Tk;
    const int ld = HS + 1, tid = threadIdx.x;
    const T neg_inf = -plus_inf<T>();

    load_rows<T, BQ>(qs, ld, qh, C, i0, nq, HS);
    if (tid < BQ) row_max[tid] = neg_inf, row_sum[tid] = T(0);
    Acc<T, BQ> acc;
    __syncthreads();
    for (i64 j0 = 0; j0 < kend; j0 += BK) {
        const i64 nk = lesser(BK, kend - j0);
        load_rows<T, BK>(kv, ld, kh, C, j0, nk, HS);
        __syncthreads();
        {  // scaled scores of the visible entries, -inf elsewhere
            T s[Dots::kPerThread];
            Dots::dots(s, qs, kv, ld, HS);
            const int c = Dots::col();
            const i64 j = j0 + c;
            for (int t = 0; t < Dots::kPerThread; ++t) {
                const int r = Dots::row(t);
                const bool sees = r < nq && c < nk && m[j] && (!causal || j <= i0 + r + shift);
                ps[r * LS + c] = sees ? s[t] * scale : neg_inf;
            }
        }
        __syncthreads();
        load_rows<T, BK>(kv, ld, vh, C, j0, nk, HS);  // every thread loads values; BQ of them also:
        if (tid < BQ) {                               // the online softmax of row tid
            T* row = ps + tid * LS;
            const T old = row_max[tid];
            T top = old;
            for (int c = 0; c < BK; ++c) top = fmax(top, row[c]);
            if (top == neg_inf) {  // nothing visible yet
                for (int c = 0; c < BK; ++c) row[c] = T(0);
                rescale[tid] = T(1);
            } else {
                T sum = 0;
                for (int c = 0; c < BK; ++c) {
                    const T e = row[c] == neg_inf ? T(0) : d_exp(row[c] - top);
                    row[c] = e;
                    sum += e;
                }
                const T f = old == neg_inf ? T(0) : d_exp(old - top);
                row_sum[tid] = row_sum[tid] * f + sum;
                row_max[tid] = top;
                rescale[tid] = f;
                if (drop.on) {  // one Philox block per 4 keys (j0 is a multiple of 4)
                    const i64 base = (h * kS + i0 + tid) * kS + j0;
                    for (int c = 0; c < nk; c += 4) {
                        const PhiloxWords r = philox_block(drop.key, static_cast<std::uint32_t>(b + off),
                                                           static_cast<std::uint32_t>((base + c) >> 2));
                        for (int l = 0; l < 4 && c + l < nk; ++l)
                            row[c + l] = dropout_keeps(r[l], drop.threshold) ? row[c + l] * drop.s : T(0);
                    }
                }
            }
        }
        __syncthreads();
        for (int ia = 0; ia < Acc<T, BQ>::kRows; ++ia)
            for (int cc = 0; cc < kColsPerLane; ++cc) acc.v[ia][cc] *= rescale[Acc<T, BQ>::row(ia)];
        acc.template add<BK>([&](int r, int c) { return ps[r * LS + c]; }, kv, ld, HS);
        __syncthreads();
    }
    // A row with nothing visible has sum 0: context 0 (as attention_forward), lse +inf.
    acc.store(ctx + b * Tq * C + h * HS, C, i0, nq, HS,
              [&](int r) { return row_sum[r] == T(0) ? T(0) : T(1) / row_sum[r]; });
    if (tid < nq)
        lse[bh * Tq + i0 + tid] = row_sum[tid] == T(0) ? plus_inf<T>() : row_max[tid] + d_log(row_sum[tid]);
}

// ---- backward -----------------------------------------------------------------------------------

// D[(b*NH + h)*Tq + i] = <dctx, ctx> over head h's columns of row i of example b; one warp per row.
template <typename T>
__global__ void row_dot_kernel(T* D, const T* dctx, const T* ctx, i64 rows, i64 NH, i64 Tq, i64 C, int HS) {
    const i64 row = warp_row();
    if (row >= rows) return;
    const i64 i = row % Tq, h = (row / Tq) % NH, b = row / (Tq * NH);
    const i64 at = (b * Tq + i) * C + h * HS;
    T s = 0;
    for (int d = warp_lane(); d < HS; d += kWarp) s += dctx[at + d] * ctx[at + d];
    s = warp_sum(s);
    if (warp_lane() == 0) D[row] = s;
}

// One tile of the backward: R query rows (i0 + r) x Cn keys (j0 + c), from shared query and key
// tiles. P = exp(scale * <q_r, k_c> - lse_r) where visible (0 elsewhere, and for a row whose lse
// is +inf), into ps[r * (Cn + 1) + c]; the dropout keep flags into keep[r * Cn + c].
template <typename T, int R, int Cn>
__device__ void tile_probs(T* ps, unsigned char* keep, const T* qt, const T* kt, int ld, int HS, const T* lse_r,
                           const std::int32_t* m, i64 i0, i64 nq, i64 j0, i64 nk, bool causal, i64 shift, T scale,
                           const TiledDrop<T>& drop, i64 example, i64 h) {
    using Dots = TileDots<T, R, Cn>;
    T s[Dots::kPerThread];
    Dots::dots(s, qt, kt, ld, HS);
    const int c = Dots::col();
    const i64 j = j0 + c;
    for (int t = 0; t < Dots::kPerThread; ++t) {
        const int r = Dots::row(t);
        const i64 i = i0 + r;
        const bool sees = r < nq && c < nk && m[j] && (!causal || j <= i + shift) && lse_r[r] != plus_inf<T>();
        ps[r * (Cn + 1) + c] = sees ? d_exp(s[t] * scale - lse_r[r]) : T(0);
        keep[r * Cn + c] = sees && (!drop.on || kept(drop, example, h, i, j));
    }
}

// dS = P * (dP - D_r) with dP = keep * s * <dout_r, v_c>, into gs[r * (Cn + 1) + c].
template <typename T, int R, int Cn>
__device__ void tile_dscores(T* gs, const T* ps, const unsigned char* keep, const T* ot, const T* vt, int ld, int HS,
                             const T* D_r, const TiledDrop<T>& drop) {
    using Dots = TileDots<T, R, Cn>;
    T s[Dots::kPerThread];
    Dots::dots(s, ot, vt, ld, HS);
    const int c = Dots::col();
    for (int t = 0; t < Dots::kPerThread; ++t) {
        const int r = Dots::row(t);
        const T dp = keep[r * Cn + c] ? (drop.on ? s[t] * drop.s : s[t]) : T(0);
        gs[r * (Cn + 1) + c] = ps[r * (Cn + 1) + c] * (dp - D_r[r]);
    }
}

// Block: keys [j0, j0 + F) of head h of example b; walks the query tiles (S rows) that see them.
template <typename T>
__global__ void tiled_dkdv_kernel(T* dk, T* dv, const T* dctx, const T* q, const T* k, const T* v, const T* lse,
                                  const T* D, const std::int32_t* mask, i64 NH, i64 Tq, i64 Tk, i64 C, int HS, T scale,
                                  bool causal, TiledDrop<T> drop, int off) {
    constexpr int F = Tiles<T>::kFixed, S = Tiles<T>::kStream, LS = F + 1;
    __shared__ T ks[F * kLd], vs[F * kLd], qd[S * kLd];  // qd: the query tile, then dctx's, then queries again
    __shared__ T ps[S * LS], gs[S * LS];                 // P and dS of the tile (query rows x keys)
    __shared__ T lse_r[S], D_r[S];
    __shared__ unsigned char keep[S * F];
    const i64 tiles = (Tk + F - 1) / F, bh = blockIdx.x / tiles, j0 = (blockIdx.x % tiles) * F;
    const i64 b = bh / NH, h = bh % NH, nk = lesser(F, Tk - j0), shift = Tk - Tq;
    const T *qh = q + b * Tq * C + h * HS, *gh = dctx + b * Tq * C + h * HS;
    const std::int32_t* m = mask + b * Tk;
    const int ld = HS + 1, tid = threadIdx.x;

    load_rows<T, F>(ks, ld, k + b * Tk * C + h * HS, C, j0, nk, HS);
    load_rows<T, F>(vs, ld, v + b * Tk * C + h * HS, C, j0, nk, HS);
    Acc<T, F> dk_acc, dv_acc;
    // Causal: query i sees key j iff j <= i + shift, so the first query that sees j0 is j0 - shift.
    const i64 first = causal ? (j0 - shift > 0 ? j0 - shift : 0) : 0;
    for (i64 i0 = first; i0 < Tq; i0 += S) {
        const i64 nq = lesser(S, Tq - i0);
        load_rows<T, S>(qd, ld, qh, C, i0, nq, HS);
        if (tid < S) {
            lse_r[tid] = tid < nq ? lse[bh * Tq + i0 + tid] : plus_inf<T>();
            D_r[tid] = tid < nq ? D[bh * Tq + i0 + tid] : T(0);
        }
        __syncthreads();
        tile_probs<T, S, F>(ps, keep, qd, ks, ld, HS, lse_r, m, i0, nq, j0, nk, causal, shift, scale, drop, b + off, h);
        __syncthreads();
        load_rows<T, S>(qd, ld, gh, C, i0, nq, HS);
        __syncthreads();
        tile_dscores<T, S, F>(gs, ps, keep, qd, vs, ld, HS, D_r, drop);
        const T s = drop.on ? drop.s : T(1);  // dv += (dropped P)^T dctx
        dv_acc.template add<S>([&](int c, int r) { return keep[r * F + c] ? ps[r * LS + c] * s : T(0); }, qd, ld, HS);
        __syncthreads();
        load_rows<T, S>(qd, ld, qh, C, i0, nq, HS);
        __syncthreads();
        dk_acc.template add<S>([&](int c, int r) { return gs[r * LS + c]; }, qd, ld, HS);  // dk += dS^T q
        __syncthreads();
    }
    // Every key of the tile is written (0 where no query sees it): activation gradients assign.
    dk_acc.store(dk + b * Tk * C + h * HS, C, j0, nk, HS, [&](int) { return scale; });
    dv_acc.store(dv + b * Tk * C + h * HS, C, j0, nk, HS, [](int) { return T(1); });
}

// Block: queries [i0, i0 + F) of head h of example b; walks the key tiles (S keys) they see.
template <typename T>
__global__ void tiled_dq_kernel(T* dq, const T* dctx, const T* q, const T* k, const T* v, const T* lse, const T* D,
                                const std::int32_t* mask, i64 NH, i64 Tq, i64 Tk, i64 C, int HS, T scale, bool causal,
                                TiledDrop<T> drop, int off) {
    constexpr int F = Tiles<T>::kFixed, S = Tiles<T>::kStream, LS = S + 1;
    __shared__ T qs[F * kLd], gd[F * kLd], kv[S * kLd];  // kv: the key tile, then values, then keys again
    __shared__ T ps[F * LS], gs[F * LS];                 // P and dS of the tile (query rows x keys)
    __shared__ T lse_r[F], D_r[F];
    __shared__ unsigned char keep[F * S];
    const i64 tiles = (Tq + F - 1) / F, bh = blockIdx.x / tiles, i0 = (blockIdx.x % tiles) * F;
    const i64 b = bh / NH, h = bh % NH, nq = lesser(F, Tq - i0), shift = Tk - Tq;
    const i64 kend = causal ? lesser(Tk, i0 + nq + shift) : Tk;
    const T *kh = k + b * Tk * C + h * HS, *vh = v + b * Tk * C + h * HS;
    const std::int32_t* m = mask + b * Tk;
    const int ld = HS + 1, tid = threadIdx.x;

    load_rows<T, F>(qs, ld, q + b * Tq * C + h * HS, C, i0, nq, HS);
    load_rows<T, F>(gd, ld, dctx + b * Tq * C + h * HS, C, i0, nq, HS);
    if (tid < F) {
        lse_r[tid] = tid < nq ? lse[bh * Tq + i0 + tid] : plus_inf<T>();
        D_r[tid] = tid < nq ? D[bh * Tq + i0 + tid] : T(0);
    }
    Acc<T, F> dq_acc;
    for (i64 j0 = 0; j0 < kend; j0 += S) {
        const i64 nk = lesser(S, kend - j0);
        load_rows<T, S>(kv, ld, kh, C, j0, nk, HS);
        __syncthreads();
        tile_probs<T, F, S>(ps, keep, qs, kv, ld, HS, lse_r, m, i0, nq, j0, nk, causal, shift, scale, drop, b + off, h);
        __syncthreads();
        load_rows<T, S>(kv, ld, vh, C, j0, nk, HS);
        __syncthreads();
        tile_dscores<T, F, S>(gs, ps, keep, gd, kv, ld, HS, D_r, drop);
        __syncthreads();
        load_rows<T, S>(kv, ld, kh, C, j0, nk, HS);
        __syncthreads();
        dq_acc.template add<S>([&](int r, int c) { return gs[r * LS + c]; }, kv, ld, HS);  // dq += dS k
        __syncthreads();
    }
    dq_acc.store(dq + b * Tq * C + h * HS, C, i0, nq, HS, [&](int) { return scale; });
}

template <typename T> TiledDrop<T> drop_of(double p, PhiloxKey key) {
    return TiledDrop<T>{key, p > 0 ? drop_threshold(p) : 0, p > 0 ? T(1) / (T(1) - T(p)) : T(1), p > 0};
}

void check_head_size(const char* op, i64 HS) {
    if (HS < 1 || HS > kMaxHead)
        throw Error(std::string(op) + ": the CUDA backend's tiled attention takes head sizes 1 to " +
                    std::to_string(kMaxHead) + ", not " + std::to_string(HS) +
                    " (use training.attention \"standard\" for this model)");
}

unsigned grid_of(const char* op, i64 blocks) {
    if (blocks > std::numeric_limits<int>::max())
        throw Error(std::string(op) + ": " + std::to_string(blocks) + " tiles are more than one launch takes");
    return static_cast<unsigned>(blocks);
}

}  // namespace

template <typename T>
void attention_tiled_forward(T* ctx, T* lse, const T* q, const T* k, const T* v, const std::int32_t* key_mask, i64 B,
                             i64 NH, i64 Tq, i64 Tk, i64 C, bool causal, double p, PhiloxKey key, int example_offset) {
    const i64 HS = C / NH;
    check_head_size("attention_tiled_forward", HS);
    const i64 blocks = B * NH * ((Tq + Tiles<T>::kQ - 1) / Tiles<T>::kQ);
    if (blocks == 0) return;
    MEFT_LAUNCH(tiled_forward_kernel<T>, grid_of("attention_tiled_forward", blocks), kTileThreads, ctx, lse, q, k, v, key_mask, NH,
                Tq, Tk, C, static_cast<int>(HS), static_cast<T>(1.0 / std::sqrt(double(HS))), causal, drop_of<T>(p, key),
                example_offset);
    MEFT_LAUNCHED("tiled attention forward");
}

template <typename T>
void attention_tiled_backward(T* dq, T* dk, T* dv, T* row_dots, const T* dctx, const T* q, const T* k, const T* v,
                              const T* ctx, const T* lse, const std::int32_t* key_mask, i64 B, i64 NH, i64 Tq, i64 Tk,
                              i64 C, bool causal, double p, PhiloxKey key, int example_offset) {
    const i64 HS = C / NH;
    check_head_size("attention_tiled_backward", HS);
    const int hs = static_cast<int>(HS);
    const T scale = static_cast<T>(1.0 / std::sqrt(double(HS)));
    const TiledDrop<T> drop = drop_of<T>(p, key);
    const i64 rows = B * NH * Tq;
    if (rows > 0) {
        MEFT_LAUNCH(row_dot_kernel<T>, blocks_for_rows(rows), kThreads, row_dots, dctx, ctx, rows, NH, Tq, C, hs);
        MEFT_LAUNCHED("tiled attention backward (row sums)");
    }
    const i64 key_blocks = B * NH * ((Tk + Tiles<T>::kFixed - 1) / Tiles<T>::kFixed);
    if (key_blocks > 0) {
        MEFT_LAUNCH(tiled_dkdv_kernel<T>, grid_of("attention_tiled_backward", key_blocks), kTileThreads, dk, dv, dctx, q, k, v, lse,
                    static_cast<const T*>(row_dots), key_mask, NH, Tq, Tk, C, hs, scale, causal, drop, example_offset);
        MEFT_LAUNCHED("tiled attention backward (dk, dv)");
    }
    const i64 query_blocks = B * NH * ((Tq + Tiles<T>::kFixed - 1) / Tiles<T>::kFixed);
    if (query_blocks > 0) {
        MEFT_LAUNCH(tiled_dq_kernel<T>, grid_of("attention_tiled_backward", query_blocks), kTileThreads, dq, dctx, q, k, v, lse,
                    static_cast<const T*>(row_dots), key_mask, NH, Tq, Tk, C, hs, scale, causal, drop, example_offset);
        MEFT_LAUNCHED("tiled attention backward (dq)");
    }
}

template void attention_tiled_forward<float>(float*, float*, const float*, const float*, const float*,
                                             const std::int32_t*, i64, i64, i64, i64, i64, bool, double, PhiloxKey, int);
template void attention_tiled_forward<double>(double*, double*, const double*, const double*, const double*,
                                              const std::int32_t*, i64, i64, i64, i64, i64, bool, double, PhiloxKey, int);
template void attention_tiled_backward<float>(float*, float*, float*, float*, const float*, const float*, const float*,
                                              const float*, const float*, const float*, const std::int32_t*, i64, i64,
                                              i64, i64, i64, bool, double, PhiloxKey, int);
template void attention_tiled_backward<double>(double*, double*, double*, double*, const double*, const double*,
                                               const double*, const double*, const double*, const double*,
                                               const std::int32_t*, i64, i64, i64, i64, i64, bool, double, PhiloxKey, int);

}  // namespace meft::cuda
