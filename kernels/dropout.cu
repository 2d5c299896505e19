// dropout.cu — dropout from the CPU backend's Philox counters (core/philox.h), so both backends
// drop the same elements: one thread per block of 4 consecutive elements, one Philox call each.
#include "common.cuh"
#include "core/backend.h"
#include "ops.h"

namespace meft::cuda {
namespace {

// Elements [4*blk, 4*blk + 4) ∩ [0, M) of example b; counter word 0 is the element offset / 4.
template <typename T>
__global__ void dropout_kernel(T* out, const T* in, i64 B, i64 M, std::uint64_t th, T s, PhiloxKey key, int off) {
    const i64 blocks = (M + 3) / 4;
    MEFT_FOR(t, B * blocks) {
        const i64 b = t / blocks, blk = t % blocks;
        const PhiloxWords r = philox_block(key, static_cast<std::uint32_t>(b + off), static_cast<std::uint32_t>(blk));
        for (int lane = 0; lane < 4; ++lane) {
            const i64 e = blk * 4 + lane;
            if (e >= M) break;
            const i64 i = b * M + e;
            out[i] = dropout_keeps(r[lane], th) ? in[i] * s : T(0);
        }
    }
}

// Row (b, h, i) of [B, NH, Tq, Tk] starts at counter offset (h*S + i)*S, a multiple of 4, so
// keys [4*jb, 4*jb + 4) share Philox block (h*S + i)*S/4 + jb.
template <typename T>
__global__ void attention_dropout_kernel(T* out, const T* in, i64 B, i64 NH, i64 Tq, i64 Tk, std::uint64_t th, T s,
                                         PhiloxKey key, int off) {
    constexpr i64 S = kAttentionDropoutStride;
    const i64 blocks = (Tk + 3) / 4;
    MEFT_FOR(t, B * NH * Tq * blocks) {
        const i64 row = t / blocks, jb = t % blocks;
        const i64 i = row % Tq, h = (row / Tq) % NH, b = row / (Tq * NH);
        const i64 block = ((h * S + i) * S) / 4 + jb;
        const PhiloxWords r = philox_block(key, static_cast<std::uint32_t>(b + off), static_cast<std::uint32_t>(block));
        for (int lane = 0; lane < 4; ++lane) {
            const i64 j = jb * 4 + lane;
            if (j >= Tk) break;
            const i64 idx = row * Tk + j;
            out[idx] = dropout_keeps(r[lane], th) ? in[idx] * s : T(0);
        }
    }
}

}  // namespace

template <typename T>
void dropout(T* out, const T* in, i64 B, i64 M, std::uint64_t threshold, T s, PhiloxKey key, int example_offset) {
    const i64 n = B * ((M + 3) / 4);
    if (n == 0) return;
    MEFT_LAUNCH(dropout_kernel, grid_for(n), kThreads, out, in, B, M, threshold, s, key, example_offset);
    MEFT_LAUNCHED("dropout");
}

template <typename T>
void attention_dropout(T* out, const T* in, i64 B, i64 NH, i64 Tq, i64 Tk, std::uint64_t threshold, T s, PhiloxKey key,
                       int example_offset) {
    const i64 n = B * NH * Tq * ((Tk + 3) / 4);
    if (n == 0) return;
    MEFT_LAUNCH(attention_dropout_kernel, grid_for(n), kThreads, out, in, B, NH, Tq, Tk, threshold, s, key, example_offset);
    MEFT_LAUNCHED("attention dropout");
}

template void dropout<float>(float*, const float*, i64, i64, std::uint64_t, float, PhiloxKey, int);
template void dropout<double>(double*, const double*, i64, i64, std::uint64_t, double, PhiloxKey, int);
template void attention_dropout<float>(float*, const float*, i64, i64, i64, i64, std::uint64_t, float, PhiloxKey, int);
template void attention_dropout<double>(double*, const double*, i64, i64, i64, i64, std::uint64_t, double, PhiloxKey,
                                        int);

}  // namespace meft::cuda
