// attention.cu — the non-GEMM parts of attention: masked softmax over keys, its backward, and
// the pointer arrays that let one batched cuBLAS call cover every (example, head).
#include "common.cuh"
#include "ops.h"

namespace meft::cuda {
namespace {

// One warp per row of P[B*NH*Tq, Tk]; row r belongs to example r / (NH*Tq).
template <typename T>
__global__ void masked_softmax_kernel(T* P, const std::int32_t* mask, i64 rows, i64 per_example, i64 Tq, i64 Tk,
                                      bool causal) {
    const i64 r = warp_row();
    if (r >= rows) return;
    const int lane = warp_lane();
    // Keys at or after `visible` are never seen (causal attention); else visible = Tk.
    const i64 i = r % Tq, visible = causal && i + (Tk - Tq) + 1 < Tk ? i + (Tk - Tq) + 1 : Tk;
    T* row = P + r * Tk;
    const std::int32_t* m = mask + (r / per_example) * Tk;
    const T neg_inf = -static_cast<T>(INFINITY);
    T mx = neg_inf;
    for (i64 j = lane; j < visible; j += kWarp)
        if (m[j]) mx = fmax(mx, row[j]);
    mx = warp_max(mx);
    if (mx == neg_inf) {  // every key is padding
        for (i64 j = lane; j < Tk; j += kWarp) row[j] = T(0);
        return;
    }
    T sum = 0;
    for (i64 j = lane; j < Tk; j += kWarp) {
        const T e = m[j] && j < visible ? d_exp(row[j] - mx) : T(0);
        row[j] = e;
        sum += e;
    }
    const T inv = T(1) / warp_sum(sum);
    for (i64 j = lane; j < Tk; j += kWarp) row[j] = m[j] && j < visible ? row[j] * inv : T(0);
}

template <typename T> __global__ void softmax_backward_kernel(T* dS, const T* P, i64 rows, i64 Tk) {
    const i64 r = warp_row();
    if (r >= rows) return;
    const int lane = warp_lane();
    const T* pr = P + r * Tk;
    T* gr = dS + r * Tk;
    T dot = 0;
    for (i64 j = lane; j < Tk; j += kWarp) dot += pr[j] * gr[j];
    dot = warp_sum(dot);
    for (i64 j = lane; j < Tk; j += kWarp) gr[j] = pr[j] * (gr[j] - dot);
}

template <typename T>
__global__ void head_pointers_kernel(const T** ptrs, const T* base, i64 B, i64 NH, i64 stride_b, i64 stride_h) {
    MEFT_FOR(t, B * NH) ptrs[t] = base + (t / NH) * stride_b + (t % NH) * stride_h;
}

}  // namespace

template <typename T>
void masked_softmax(T* P, const std::int32_t* key_mask, i64 B, i64 NH, i64 Tq, i64 Tk, bool causal) {
    const i64 rows = B * NH * Tq;
    if (rows == 0) return;
    MEFT_LAUNCH(masked_softmax_kernel, blocks_for_rows(rows), kThreads, P, key_mask, rows, NH * Tq, Tq, Tk, causal);
    MEFT_LAUNCHED("attention softmax");
}

template <typename T> void softmax_backward(T* dS, const T* P, i64 rows, i64 Tk) {
    if (rows == 0) return;
    MEFT_LAUNCH(softmax_backward_kernel, blocks_for_rows(rows), kThreads, dS, P, rows, Tk);
    MEFT_LAUNCHED("attention softmax backward");
}

template <typename T> void head_pointers(const T** ptrs, const T* base, i64 B, i64 NH, i64 stride_b, i64 stride_h) {
    MEFT_LAUNCH(head_pointers_kernel, grid_for(B * NH), kThreads, ptrs, base, B, NH, stride_b, stride_h);
    MEFT_LAUNCHED("attention head pointers");
}

template void masked_softmax<float>(float*, const std::int32_t*, i64, i64, i64, i64, bool);
template void masked_softmax<double>(double*, const std::int32_t*, i64, i64, i64, i64, bool);
template void softmax_backward<float>(float*, const float*, i64, i64);
template void softmax_backward<double>(double*, const double*, i64, i64);
template void head_pointers<float>(const float**, const float*, i64, i64, i64, i64);
template void head_pointers<double>(const double**, const double*, i64, i64, i64, i64);

}  // namespace meft::cuda
