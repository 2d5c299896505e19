// layernorm.cu — LayerNorm over the last dimension, one warp per row. Two passes (mean, then the
// centred variance) as in the CPU reference; warp reductions have a fixed order.
#include "common.cuh"
#include "ops.h"

namespace meft::cuda {
namespace {

template <typename T>
__global__ void layernorm_forward_kernel(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, i64 N, i64 C,
                                         T eps) {
    const i64 r = warp_row();
    if (r >= N) return;  // the whole warp leaves together
    const int lane = warp_lane();
    const T* xr = x + r * C;
    T m = 0;
    for (i64 c = lane; c < C; c += kWarp) m += xr[c];
    m = warp_sum(m) / T(C);
    T var = 0;
    for (i64 c = lane; c < C; c += kWarp) var += (xr[c] - m) * (xr[c] - m);
    var = warp_sum(var) / T(C);
    const T s = T(1) / d_sqrt(var + eps);
    T* o = out + r * C;
    for (i64 c = lane; c < C; c += kWarp) o[c] = (xr[c] - m) * s * w[c] + b[c];
    if (lane == 0) {
        mean[r] = m;
        rstd[r] = s;
    }
}

// dx = s * (g*w - mean(g*w) - xhat * mean(g*w * xhat)), xhat = (x - m) * s.
template <typename T>
__global__ void layernorm_backward_kernel(T* dx, const T* g, const T* x, const T* w, const T* mean, const T* rstd,
                                          i64 N, i64 C, bool acc) {
    const i64 r = warp_row();
    if (r >= N) return;
    const int lane = warp_lane();
    const T *xr = x + r * C, *gr = g + r * C;
    const T m = mean[r], s = rstd[r];
    T sum_dxh = 0, sum_dxh_xh = 0;
    for (i64 c = lane; c < C; c += kWarp) {
        const T dxh = gr[c] * w[c];
        sum_dxh += dxh;
        sum_dxh_xh += dxh * (xr[c] - m) * s;
    }
    sum_dxh = warp_sum(sum_dxh) / T(C);
    sum_dxh_xh = warp_sum(sum_dxh_xh) / T(C);
    T* d = dx + r * C;
    for (i64 c = lane; c < C; c += kWarp) {
        const T v = s * (gr[c] * w[c] - sum_dxh - (xr[c] - m) * s * sum_dxh_xh);
        d[c] = acc ? d[c] + v : v;
    }
}

}  // namespace

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, i64 N, i64 C, double eps) {
    if (N == 0) return;
    MEFT_LAUNCH(layernorm_forward_kernel, blocks_for_rows(N), kThreads, out, mean, rstd, x, w, b, N, C, T(eps));
    MEFT_LAUNCHED("layernorm_forward");
}

template <typename T>
void layernorm_backward_dinp(T* dx, const T* g, const T* x, const T* w, const T* mean, const T* rstd, i64 N, i64 C,
                             bool acc) {
    if (N == 0) return;
    MEFT_LAUNCH(layernorm_backward_kernel, blocks_for_rows(N), kThreads, dx, g, x, w, mean, rstd, N, C, acc);
    MEFT_LAUNCHED("layernorm_backward");
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*, const float*, i64, i64,
                                       double);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*, const double*, i64,
                                        i64, double);
template void layernorm_backward_dinp<float>(float*, const float*, const float*, const float*, const float*,
                                             const float*, i64, i64, bool);
template void layernorm_backward_dinp<double>(double*, const double*, const double*, const double*, const double*,
                                              const double*, i64, i64, bool);

}  // namespace meft::cuda
