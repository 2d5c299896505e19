// weight_norm.cu — DoRA's weight normalisation by rows: norm[r] = ||w[r,:]||, g[r] = m[r] / norm[r],
// and its backward. One warp per row; each lane sums its strided share of the squares in double
// and the warp adds the shares in a fixed butterfly order, so a recomputed norm equals the
// forward's bit for bit.
#include "common.cuh"
#include "ops.h"

namespace meft::cuda {
namespace {

template <typename T> __global__ void weight_norm_kernel(T* g, T* norm, const T* m, const T* w, i64 R, i64 C) {
    const i64 r = warp_row();
    if (r >= R) return;
    const T* row = w + r * C;
    double ss = 0;
    for (i64 j = warp_lane(); j < C; j += kWarp) ss += double(row[j]) * double(row[j]);
    ss = warp_sum(ss);
    if (warp_lane() != 0) return;
    const T n = T(sqrt(ss));  // g = m / n is exactly 1 when m holds this very norm
    norm[r] = n;
    g[r] = T(double(m[r]) / double(n));
}

template <typename T>
__global__ void weight_norm_backward_kernel(T* dm, T* dw, const T* dg, const T* m, const T* w, const T* norm, i64 R, i64 C) {
    const i64 r = warp_row();
    if (r >= R) return;
    const double n = double(norm[r]);
    if (warp_lane() == 0) dm[r] += T(double(dg[r]) / n);
    if (!dw) return;
    const double f = -double(dg[r]) * double(m[r]) / (n * n * n);
    for (i64 j = warp_lane(); j < C; j += kWarp) dw[r * C + j] = T(f * double(w[r * C + j]));
}

}  // namespace

template <typename T> void weight_norm_forward(T* g, T* norm, const T* m, const T* w, i64 R, i64 C) {
    if (R == 0) return;
    MEFT_LAUNCH(weight_norm_kernel, blocks_for_rows(R), kThreads, g, norm, m, w, R, C);
    MEFT_LAUNCHED("weight_norm_forward");
}

template <typename T>
void weight_norm_backward(T* dm, T* dw, const T* dg, const T* m, const T* w, const T* norm, i64 R, i64 C) {
    if (R == 0) return;
    MEFT_LAUNCH(weight_norm_backward_kernel, blocks_for_rows(R), kThreads, dm, dw, dg, m, w, norm, R, C);
    MEFT_LAUNCHED("weight_norm_backward");
}

template void weight_norm_forward<float>(float*, float*, const float*, const float*, i64, i64);
template void weight_norm_forward<double>(double*, double*, const double*, const double*, i64, i64);
template void weight_norm_backward<float>(float*, float*, const float*, const float*, const float*, const float*, i64, i64);
template void weight_norm_backward<double>(double*, double*, const double*, const double*, const double*, const double*, i64,
                                           i64);

}  // namespace meft::cuda
