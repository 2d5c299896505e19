// elementwise.cu — point-wise and copy-like kernels, losses and AdamW: one thread per element
// (grid-stride), formulas written exactly as in the CPU reference.
#include "common.cuh"
#include "ops.h"

namespace meft::cuda {
namespace {

template <typename T, typename F> __global__ void map1_kernel(T* out, const T* a, i64 n, F f) {
    MEFT_FOR(i, n) out[i] = f(a[i]);
}
template <typename T, typename F> __global__ void map2_kernel(T* out, const T* a, const T* b, i64 n, F f) {
    MEFT_FOR(i, n) out[i] = f(a[i], b[i]);
}
template <typename T, typename F> void map1(T* out, const T* a, i64 n, F f, const char* what) {
    if (n == 0) return;
    MEFT_LAUNCH(map1_kernel, grid_for(n), kThreads, out, a, n, f);
    MEFT_LAUNCHED(what);
}
template <typename T, typename F> void map2(T* out, const T* a, const T* b, i64 n, F f, const char* what) {
    if (n == 0) return;
    MEFT_LAUNCH(map2_kernel, grid_for(n), kThreads, out, a, b, n, f);
    MEFT_LAUNCHED(what);
}

template <typename T> struct Constant {
    T v;
    __device__ T operator()(T) const { return v; }
};
template <typename T> struct Axpy {
    T a;
    __device__ T operator()(T y, T x) const { return y + a * x; }
};
template <typename T> struct Plus {
    __device__ T operator()(T y, T x) const { return y + x; }
};
template <typename T> struct Scale {
    T s;
    __device__ T operator()(T x) const { return x * s; }
};
template <typename T> struct Gelu {
    __device__ T operator()(T x) const { return T(0.5) * x * (T(1) + d_erf(x * T(0.70710678118654752440))); }
};
template <typename T> struct GeluGrad {
    __device__ T operator()(T g, T x) const {
        const T cdf = T(0.5) * (T(1) + d_erf(x * T(0.70710678118654752440)));
        return g * (cdf + x * T(0.39894228040143267794) * d_exp(T(-0.5) * x * x));
    }
};
template <typename T> struct Tanh {
    __device__ T operator()(T x) const { return d_tanh(x); }
};
template <typename T> struct Relu {
    __device__ T operator()(T x) const { return x > T(0) ? x : T(0); }
};
template <typename T> struct ReluGrad {
    __device__ T operator()(T g, T x) const { return x > T(0) ? g : T(0); }
};
template <typename T> struct TanhGrad {
    __device__ T operator()(T g, T y) const { return g * (T(1) - y * y); }
};

template <typename T> __global__ void channel_scale_kernel(T* out, const T* x, const T* s, i64 N, i64 C) {
    MEFT_FOR(i, N * C) out[i] = x[i] * s[i % C];
}
template <typename T> __global__ void broadcast_rows_kernel(T* out, const T* row, i64 N, i64 C) {
    MEFT_FOR(i, N * C) out[i] = row[i % C];
}
template <typename T> __global__ void first_token_kernel(T* out, const T* inp, i64 B, i64 TC, i64 C) {
    MEFT_FOR(i, B * C) out[i] = inp[(i / C) * TC + i % C];
}
template <typename T> __global__ void copy_columns_kernel(T* dst, const T* src, i64 R, i64 c, i64 C, i64 first) {
    MEFT_FOR(i, R * c) dst[i] = src[(i / c) * C + first + i % c];
}
template <typename T> __global__ void first_token_backward_kernel(T* dinp, const T* g, i64 B, i64 TC, i64 C) {
    MEFT_FOR(i, B * C) dinp[(i / C) * TC + i % C] += g[i];
}
template <typename T>
__global__ void prefix_concat_kernel(T* out, const T* prefix, const T* x, i64 B, i64 P, i64 T_, i64 C) {
    const i64 per = (P + T_) * C;
    MEFT_FOR(i, B * per) {
        const i64 b = i / per, k = i % per;
        out[i] = k < P * C ? prefix[k] : x[b * T_ * C + (k - P * C)];
    }
}
// dprefix[k] += g[0, k] + g[1, k] + ... in example order (the CPU's order).
template <typename T> __global__ void prefix_grad_kernel(T* dprefix, const T* g, i64 B, i64 PC, i64 per) {
    MEFT_FOR(k, PC) {
        T s = dprefix[k];
        for (i64 b = 0; b < B; ++b) s += g[b * per + k];
        dprefix[k] = s;
    }
}
template <typename T>
__global__ void prefix_dx_kernel(T* dx, const T* g, i64 B, i64 P, i64 T_, i64 C, bool acc) {
    const i64 tc = T_ * C;
    MEFT_FOR(i, B * tc) {
        const T v = g[(i / tc) * (P + T_) * C + P * C + i % tc];
        dx[i] = acc ? dx[i] + v : v;
    }
}

template <typename T> __global__ void mse_kernel(T* l, const T* x, const T* t, i64 B) {
    MEFT_FOR(b, B) l[b] = (x[b] - t[b]) * (x[b] - t[b]);
}
template <typename T> __global__ void mse_grad_kernel(T* d, const T* x, const T* t, i64 B, T scale) {
    MEFT_FOR(b, B) d[b] = T(2) * (x[b] - t[b]) * scale;
}

// One thread per example: K (the number of classes) is small.
template <typename T>
__global__ void cross_entropy_kernel(T* l, T* pr, const T* z, const std::int32_t* y, i64 B, i64 K, int* bad) {
    MEFT_FOR(b, B) {
        const T* zr = z + b * K;
        if (y[b] >= K) {
            *bad = 1;
            l[b] = T(0);
            continue;
        }
        T mx = zr[0];
        for (i64 j = 1; j < K; ++j) mx = zr[j] > mx ? zr[j] : mx;
        T sum = 0;
        for (i64 j = 0; j < K; ++j) sum += d_exp(zr[j] - mx);
        for (i64 j = 0; j < K; ++j) pr[b * K + j] = d_exp(zr[j] - mx) / sum;
        l[b] = y[b] < 0 ? T(0) : d_log(sum) + mx - zr[y[b]];  // negative: an ignored row
    }
}
template <typename T>
__global__ void cross_entropy_grad_kernel(T* d, const T* pr, const std::int32_t* y, i64 B, i64 K, T scale) {
    MEFT_FOR(i, B * K) {
        const std::int32_t label = y[i / K];
        d[i] = label < 0 ? T(0) : (pr[i] - (i % K == label ? T(1) : T(0))) * scale;
    }
}

template <typename T>
__global__ void adamw_kernel(T* p, const T* g, T* m, T* v, i64 n, T b1, T b2, T eps, T step_size, T decay, T sqrt_bc2) {
    MEFT_FOR(i, n) {
        const T mi = b1 * m[i] + (T(1) - b1) * g[i];
        const T vi = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step_size * mi / (d_sqrt(vi) / sqrt_bc2 + eps);
    }
}

}  // namespace

template <typename T> void fill(T* x, i64 n, double value) { map1(x, x, n, Constant<T>{T(value)}, "fill"); }
template <typename T> void axpy(T* y, const T* x, i64 n, double alpha) {
    if (alpha == 1.0) map2(y, y, x, n, Plus<T>{}, "accumulate");  // y + x exactly, as the CPU's accumulate
    else map2(y, y, x, n, Axpy<T>{T(alpha)}, "axpy");
}
template <typename T> void add(T* out, const T* a, const T* b, i64 n) { map2(out, a, b, n, Plus<T>{}, "add"); }
template <typename T> void scale(T* x, i64 n, double s) { map1(x, x, n, Scale<T>{T(s)}, "scale"); }
template <typename T> void gelu_forward(T* out, const T* x, i64 n) { map1(out, x, n, Gelu<T>{}, "gelu_forward"); }
template <typename T> void gelu_backward(T* dx, const T* g, const T* x, i64 n) {
    map2(dx, g, x, n, GeluGrad<T>{}, "gelu_backward");
}
template <typename T> void tanh_forward(T* out, const T* x, i64 n) { map1(out, x, n, Tanh<T>{}, "tanh_forward"); }
template <typename T> void tanh_backward(T* dx, const T* g, const T* y, i64 n) {
    map2(dx, g, y, n, TanhGrad<T>{}, "tanh_backward");
}
template <typename T> void relu_forward(T* out, const T* x, i64 n) { map1(out, x, n, Relu<T>{}, "relu_forward"); }
template <typename T> void relu_backward(T* dx, const T* g, const T* x, i64 n) {
    map2(dx, g, x, n, ReluGrad<T>{}, "relu_backward");
}
template <typename T> void channel_scale_forward(T* out, const T* x, const T* s, i64 N, i64 C) {
    if (N * C == 0) return;
    MEFT_LAUNCH(channel_scale_kernel, grid_for(N * C), kThreads, out, x, s, N, C);
    MEFT_LAUNCHED("channel_scale_forward");
}
template <typename T> void channel_scale_dinp(T* dx, const T* g, const T* s, i64 N, i64 C) {
    if (N * C == 0) return;
    MEFT_LAUNCH(channel_scale_kernel, grid_for(N * C), kThreads, dx, g, s, N, C);
    MEFT_LAUNCHED("channel_scale_backward");
}
template <typename T> void broadcast_rows(T* out, const T* row, i64 N, i64 C) {
    if (N * C == 0) return;
    MEFT_LAUNCH(broadcast_rows_kernel, grid_for(N * C), kThreads, out, row, N, C);
    MEFT_LAUNCHED("broadcast_rows");
}
template <typename T> void copy_columns(T* dst, const T* src, i64 R, i64 c, i64 C, i64 first) {
    if (R * c == 0) return;
    MEFT_LAUNCH(copy_columns_kernel, grid_for(R * c), kThreads, dst, src, R, c, C, first);
    MEFT_LAUNCHED("copy_columns");
}
template <typename T> void first_token_forward(T* out, const T* inp, i64 B, i64 TC, i64 C) {
    if (B * C == 0) return;
    MEFT_LAUNCH(first_token_kernel, grid_for(B * C), kThreads, out, inp, B, TC, C);
    MEFT_LAUNCHED("first_token_forward");
}
template <typename T> void first_token_backward(T* dinp, const T* g, i64 B, i64 TC, i64 C) {
    if (B * C == 0) return;
    MEFT_LAUNCH(first_token_backward_kernel, grid_for(B * C), kThreads, dinp, g, B, TC, C);
    MEFT_LAUNCHED("first_token_backward");
}
template <typename T>
void prefix_concat_forward(T* out, const T* prefix, const T* x, i64 B, i64 P, i64 T_, i64 C) {
    if (B * (P + T_) * C == 0) return;
    MEFT_LAUNCH(prefix_concat_kernel, grid_for(B * (P + T_) * C), kThreads, out, prefix, x, B, P, T_, C);
    MEFT_LAUNCHED("prefix_concat_forward");
}
template <typename T>
void prefix_concat_backward(T* dprefix, T* dx, const T* g, i64 B, i64 P, i64 T_, i64 C, bool acc) {
    if (dprefix && P * C > 0) {
        MEFT_LAUNCH(prefix_grad_kernel, grid_for(P * C), kThreads, dprefix, g, B, P * C, (P + T_) * C);
        MEFT_LAUNCHED("prefix_concat_backward");
    }
    if (B * T_ * C > 0) {
        MEFT_LAUNCH(prefix_dx_kernel, grid_for(B * T_ * C), kThreads, dx, g, B, P, T_, C, acc);
        MEFT_LAUNCHED("prefix_concat_backward");
    }
}
template <typename T> void mse_forward(T* losses, const T* preds, const T* targets, i64 B) {
    if (B == 0) return;
    MEFT_LAUNCH(mse_kernel, grid_for(B), kThreads, losses, preds, targets, B);
    MEFT_LAUNCHED("mse_forward");
}
template <typename T> void mse_backward(T* dpreds, const T* preds, const T* targets, i64 B, double scale) {
    if (B == 0) return;
    MEFT_LAUNCH(mse_grad_kernel, grid_for(B), kThreads, dpreds, preds, targets, B, T(scale));
    MEFT_LAUNCHED("mse_backward");
}
template <typename T>
void cross_entropy_forward(T* losses, T* probs, const T* logits, const std::int32_t* labels, i64 B, i64 K,
                           int* bad_label) {
    if (B == 0) return;
    MEFT_LAUNCH(cross_entropy_kernel, grid_for(B), kThreads, losses, probs, logits, labels, B, K, bad_label);
    MEFT_LAUNCHED("cross_entropy_forward");
}
template <typename T>
void cross_entropy_backward(T* dlogits, const T* probs, const std::int32_t* labels, i64 B, i64 K, double scale) {
    if (B * K == 0) return;
    MEFT_LAUNCH(cross_entropy_grad_kernel, grid_for(B * K), kThreads, dlogits, probs, labels, B, K, T(scale));
    MEFT_LAUNCHED("cross_entropy_backward");
}
template <typename T>
void adamw(T* p, const T* g, T* m, T* v, i64 n, T beta1, T beta2, T eps, T step_size, T decay, T sqrt_bc2) {
    if (n == 0) return;
    MEFT_LAUNCH(adamw_kernel, grid_for(n), kThreads, p, g, m, v, n, beta1, beta2, eps, step_size, decay, sqrt_bc2);
    MEFT_LAUNCHED("adamw_update");
}

#define MEFT_INSTANTIATE(T)                                                                                      \
    template void fill<T>(T*, i64, double);                                                                      \
    template void axpy<T>(T*, const T*, i64, double);                                                            \
    template void add<T>(T*, const T*, const T*, i64);                                                           \
    template void scale<T>(T*, i64, double);                                                                     \
    template void gelu_forward<T>(T*, const T*, i64);                                                            \
    template void gelu_backward<T>(T*, const T*, const T*, i64);                                                 \
    template void tanh_forward<T>(T*, const T*, i64);                                                            \
    template void tanh_backward<T>(T*, const T*, const T*, i64);                                                 \
    template void relu_forward<T>(T*, const T*, i64);                                                            \
    template void relu_backward<T>(T*, const T*, const T*, i64);                                                 \
    template void channel_scale_forward<T>(T*, const T*, const T*, i64, i64);                                    \
    template void channel_scale_dinp<T>(T*, const T*, const T*, i64, i64);                                       \
    template void broadcast_rows<T>(T*, const T*, i64, i64);                                                     \
    template void copy_columns<T>(T*, const T*, i64, i64, i64, i64);                                             \
    template void first_token_forward<T>(T*, const T*, i64, i64, i64);                                           \
    template void first_token_backward<T>(T*, const T*, i64, i64, i64);                                          \
    template void prefix_concat_forward<T>(T*, const T*, const T*, i64, i64, i64, i64);                          \
    template void prefix_concat_backward<T>(T*, T*, const T*, i64, i64, i64, i64, bool);                         \
    template void mse_forward<T>(T*, const T*, const T*, i64);                                                   \
    template void mse_backward<T>(T*, const T*, const T*, i64, double);                                          \
    template void cross_entropy_forward<T>(T*, T*, const T*, const std::int32_t*, i64, i64, int*);               \
    template void cross_entropy_backward<T>(T*, const T*, const std::int32_t*, i64, i64, double);                \
    template void adamw<T>(T*, const T*, T*, T*, i64, T, T, T, T, T, T);
MEFT_INSTANTIATE(float)
MEFT_INSTANTIATE(double)

}  // namespace meft::cuda
