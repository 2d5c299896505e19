// ops.h — the kernels' launch functions, one per op, on raw device pointers.
//
// The CUDA backend (cuda_backend.cu) checks shapes and dtypes and calls these; each is defined in
// the .cu file of its op family and instantiated for float and double. Semantics are those of the
// CPU reference (engine/core/cpu_backend.cpp): parameter gradients accumulate, activation
// gradients assign unless `acc`. Dimension letters as in engine/core/backend.h.
#pragma once
#include <cstdint>

#include "core/philox.h"

namespace meft::cuda {

using i64 = std::int64_t;

// ---- elementwise.cu -------------------------------------------------------------------------
template <typename T> void fill(T* x, i64 n, double value);
template <typename T> void axpy(T* y, const T* x, i64 n, double alpha);  // y += alpha * x (alpha 1: y += x)
template <typename T> void add(T* out, const T* a, const T* b, i64 n);   // out may alias a or b
template <typename T> void scale(T* x, i64 n, double s);
template <typename T> void gelu_forward(T* out, const T* x, i64 n);
template <typename T> void gelu_backward(T* dx, const T* g, const T* x, i64 n);
template <typename T> void tanh_forward(T* out, const T* x, i64 n);
template <typename T> void tanh_backward(T* dx, const T* g, const T* y, i64 n);
template <typename T> void relu_forward(T* out, const T* x, i64 n);
template <typename T> void relu_backward(T* dx, const T* g, const T* x, i64 n);
template <typename T> void channel_scale_forward(T* out, const T* x, const T* s, i64 N, i64 C);
template <typename T> void channel_scale_dinp(T* dx, const T* g, const T* s, i64 N, i64 C);
template <typename T> void broadcast_rows(T* out, const T* row, i64 N, i64 C);  // out[r,:] = row
template <typename T> void copy_columns(T* dst, const T* src, i64 R, i64 c, i64 C, i64 first);  // dst[R,c] = src[R, first:first+c]
// DoRA's row normalisation (weight_norm.cu): norm[r] = ||w[r,:]||, g[r] = m[r] / norm[r]; backward dm += dg / norm,
// dw (may be null) = -(dg m / norm^3) w.
template <typename T> void weight_norm_forward(T* g, T* norm, const T* m, const T* w, i64 R, i64 C);
template <typename T>
void weight_norm_backward(T* dm, T* dw, const T* dg, const T* m, const T* w, const T* norm, i64 R, i64 C);
template <typename T> void first_token_forward(T* out, const T* inp, i64 B, i64 TC, i64 C);
template <typename T> void first_token_backward(T* dinp, const T* g, i64 B, i64 TC, i64 C);  // dinp[b,0,:] += g[b,:]
template <typename T> void prefix_concat_forward(T* out, const T* prefix, const T* x, i64 B, i64 P, i64 T_, i64 C);
template <typename T> void prefix_concat_backward(T* dprefix, T* dx, const T* g, i64 B, i64 P, i64 T_, i64 C,
                                                  bool acc);  // dprefix may be null
template <typename T> void mse_forward(T* losses, const T* preds, const T* targets, i64 B);
template <typename T> void mse_backward(T* dpreds, const T* preds, const T* targets, i64 B, double scale);
template <typename T> void cross_entropy_forward(T* losses, T* probs, const T* logits, const std::int32_t* labels,
                                                 i64 B, i64 K, int* bad_label);
template <typename T> void cross_entropy_backward(T* dlogits, const T* probs, const std::int32_t* labels, i64 B, i64 K,
                                                  double scale);
// PyTorch AdamW with host-computed scalars (see CpuBackend::adamw_update).
template <typename T> void adamw(T* p, const T* g, T* m, T* v, i64 n, T beta1, T beta2, T eps, T step_size, T decay,
                                 T sqrt_bc2);

// ---- dropout.cu -----------------------------------------------------------------------------
// out[b, e] = in[b, e] * keep * s over [B, M], keep from philox_block(key, b + example_offset, e / 4).
template <typename T> void dropout(T* out, const T* in, i64 B, i64 M, std::uint64_t threshold, T s, PhiloxKey key,
                                   int example_offset);
// Attention probabilities [B, NH, Tq, Tk]: element (i, j) of head h draws offset (h*S + i)*S + j.
template <typename T> void attention_dropout(T* out, const T* in, i64 B, i64 NH, i64 Tq, i64 Tk,
                                             std::uint64_t threshold, T s, PhiloxKey key, int example_offset);

// ---- reduce.cu ------------------------------------------------------------------------------
// Column reductions over N rows in a fixed partition: `partial` holds column_partials(N, C) elements.
i64 column_partials(i64 N, i64 C);
template <typename T> void column_sum_add(T* out, const T* x, i64 N, i64 C, T* partial);                // out[c] += sum_r x
template <typename T> void column_dot_add(T* out, const T* x, const T* y, i64 N, i64 C, T* partial);    // out[c] += sum_r x*y
// dw[c] += sum_r g * (x - mean_r) * rstd_r
template <typename T> void layernorm_weight_grad(T* dw, const T* g, const T* x, const T* mean, const T* rstd, i64 N,
                                                 i64 C, T* partial);
constexpr int kSumSquaresBlocks = 256;
template <typename T> double sum_squares(const T* x, i64 n, double* partials);  // partials: kSumSquaresBlocks doubles

// ---- layernorm.cu ---------------------------------------------------------------------------
template <typename T> void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, i64 N, i64 C,
                                             double eps);
template <typename T> void layernorm_backward_dinp(T* dx, const T* g, const T* x, const T* w, const T* mean,
                                                   const T* rstd, i64 N, i64 C, bool acc);

// ---- attention.cu ---------------------------------------------------------------------------
// In place over rows of P[B*NH*Tq, Tk]: softmax over keys with key_mask[B, Tk]; padded keys get 0,
// and a row with every key padded is all 0. causal: query i sees keys j <= i + (Tk - Tq) only.
template <typename T>
void masked_softmax(T* P, const std::int32_t* key_mask, i64 B, i64 NH, i64 Tq, i64 Tk, bool causal);
// In place over rows: dS = P * (dS - <P, dS>).
template <typename T> void softmax_backward(T* dS, const T* P, i64 rows, i64 Tk);
// ptrs[b*NH + h] = base + b*stride_b + h*stride_h, for batched GEMMs over (example, head).
template <typename T> void head_pointers(const T** ptrs, const T* base, i64 B, i64 NH, i64 stride_b, i64 stride_h);

// ---- attention_tiled.cu ---------------------------------------------------------------------
// Backend::attention_tiled_forward/backward on q, ctx [B, Tq, C], k, v [B, Tk, C], key_mask
// [B, Tk], lse [B, NH, Tq] (T: float for float inputs, double for double); head sizes C / NH up
// to 128 (an Error otherwise). Dropout (p > 0) draws attention_dropout's counters. Backward
// assigns dq, dk, dv; row_dots is scratch of B * NH * Tq elements (the rows' <dctx, ctx>).
template <typename T>
void attention_tiled_forward(T* ctx, T* lse, const T* q, const T* k, const T* v, const std::int32_t* key_mask, i64 B,
                             i64 NH, i64 Tq, i64 Tk, i64 C, bool causal, double p, PhiloxKey key, int example_offset);
template <typename T>
void attention_tiled_backward(T* dq, T* dk, T* dv, T* row_dots, const T* dctx, const T* q, const T* k, const T* v,
                              const T* ctx, const T* lse, const std::int32_t* key_mask, i64 B, i64 NH, i64 Tq, i64 Tk,
                              i64 C, bool causal, double p, PhiloxKey key, int example_offset);

// ---- embedding.cu ---------------------------------------------------------------------------
template <typename T> void embeddings_forward(T* out, const std::int32_t* ids, const std::int32_t* pos,
                                              const std::int32_t* types, const T* wte, const T* wpe, const T* wtt,
                                              i64 N, i64 C);
// dtable[table_rows[u], c] += sum over k in [starts[u], starts[u+1]) of g[rows[k], c], rows in
// increasing order: the CPU's summation order, without atomics.
template <typename T> void embedding_backward(T* dtable, const T* g, const std::int32_t* table_rows,
                                              const std::int32_t* starts, const std::int32_t* rows, i64 n_unique,
                                              i64 C);

// ---- coupling.cu ----------------------------------------------------------------------------
// See Backend::coupling_forward. *out_of_range is set to 1 when a value does not fit the
// fixed-point stream.
template <typename T> void coupling_f64(double* x, const T* f, i64 n, int m, bool inverse);
template <typename T> void coupling_i64(std::int64_t* x, std::uint8_t* rem, const T* f, i64 n, int m, bool inverse,
                                        int* out_of_range);
template <typename T> void stream_read(T* out, const double* x_f64, const std::int64_t* x_i64, i64 n);
template <typename T> void stream_write(double* x_f64, std::int64_t* x_i64, const T* v, i64 n, int* out_of_range);

}  // namespace meft::cuda
