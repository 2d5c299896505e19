// backend.h — the interface every compute backend implements (CPU reference here, CUDA in kernels/).
//
// Conventions (llm.c style, see docs/engine.md):
//  * Argument order: outputs first, then saved tensors, then inputs, then weights, then scalars.
//  * Dimension letters: B batch, T sequence, C channels (hidden), OC output channels, NH heads,
//    HS head size (C / NH), K classes, N rows (= B*T when a [B, T, C] tensor is seen as [N, C]).
//  * Parameter gradients always accumulate (+=), so micro-batches add up. Activation gradients
//    assign (=) unless the op takes `accumulate`, which the model sets where a tensor feeds two
//    consumers (the residual stream, the input of q/k/v).
//  * An empty Tensor (data == nullptr) means "not needed": e.g. no dw for a frozen weight.
//  * All floating tensors of one call share a dtype: F32 for training, F64 for gradient checks.
//    Token ids, masks and class labels are I32.
//
// Shape checks live once, in this class (a non-virtual interface). Every op below is a public
// non-virtual member that checks the documented shapes and dtypes of its arguments (backend.cpp;
// a failure is a meft::Error naming the op and the shapes) and then calls the protected pure
// virtual of the same name with the suffix `_impl`, which is what a backend overrides. So the
// CPU, CUDA and shape-only (`meft plan`) backends refuse the same calls with the same message.
// Checks that need the tensors' values (label and token-id ranges, the fixed-point stream range)
// stay in the implementations.
#pragma once
#include <string>

#include "core/arena.h"
#include "core/philox.h"
#include "core/stream_fixed.h"  // kStreamFractionBits, the exact range
#include "core/tensor.h"

namespace meft {

// Attention-probability dropout draws element (i, j) of head h at (h*S + i)*S + j, S = 4096.
constexpr std::int64_t kAttentionDropoutStride = 4096;

// Packed remainders of a division by m: 1, 2, 4 or 8 bits each.
constexpr int remainder_bits(int m) { return m <= 2 ? 1 : m <= 4 ? 2 : m <= 16 ? 4 : 8; }
constexpr std::int64_t remainder_bytes(std::int64_t n, int m) {
    return m <= 1 ? 0 : (n * remainder_bits(m) + 7) / 8;
}

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    virtual MemorySource memory() = 0;
    virtual bool is_host() const = 0;
    // The floating dtypes its ops compute in: F32 and F64; the shape-only backend also plans
    // F16 and BF16 activations (`meft plan --dtype`), which no backend runs.
    virtual bool computes_in(DType t) const { return t == DType::F32 || t == DType::F64; }

    // ---- data movement --------------------------------------------------------------------
    // upload and download are the only virtual ones: they move raw bytes, with nothing to check.
    virtual void upload(Tensor dst, const void* host_src) = 0;  // dst.bytes() bytes
    virtual void download(void* host_dst, Tensor src) = 0;
    void fill(Tensor t, double value);
    void copy(Tensor dst, Tensor src);                // same dtype (any) and element count
    void accumulate(Tensor dst, Tensor src);          // dst += src
    void axpy(Tensor dst, Tensor src, double alpha);  // dst += alpha * src
    void add(Tensor out, Tensor a, Tensor b);         // out = a + b (out may alias a or b)
    void scale(Tensor t, double s);                   // t *= s
    double sum_squares(Tensor t);                     // sum of t^2, in double

    // ---- linear: out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC] -----------------------------------
    void linear_forward(Tensor out, Tensor inp, Tensor w, Tensor b);
    // dinp[N,C] = dout @ w ; dw[OC,C] += dout^T @ inp ; db[OC] += sum_rows(dout)
    void linear_backward(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, bool accumulate_dinp);

    // ---- layernorm over the last dimension: inp, out [N,C]; mean, rstd [N]; w, b [C] ---------
    void layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor w, Tensor b, double eps);
    void layernorm_backward(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w,
                            Tensor mean, Tensor rstd, bool accumulate_dinp);

    // ---- point-wise activations ---------------------------------------------------------------
    void gelu_forward(Tensor out, Tensor inp);  // erf form
    void gelu_backward(Tensor dinp, Tensor dout, Tensor inp);
    void tanh_forward(Tensor out, Tensor inp);
    void tanh_backward(Tensor dinp, Tensor dout, Tensor out);
    void relu_forward(Tensor out, Tensor inp);
    void relu_backward(Tensor dinp, Tensor dout, Tensor inp);  // dinp = dout where inp > 0, else 0
    // The backbone's FFN activation (BERT, RoBERTa: GELU; OPT: ReLU).
    void activation_forward(bool relu, Tensor out, Tensor inp) { relu ? relu_forward(out, inp) : gelu_forward(out, inp); }
    void activation_backward(bool relu, Tensor dinp, Tensor dout, Tensor inp) {
        relu ? relu_backward(dinp, dout, inp) : gelu_backward(dinp, dout, inp);
    }

    // ---- per-channel scaling ((IA)3): out[N,C] = inp[N,C] * scale[C] ----------------------------
    void channel_scale_forward(Tensor out, Tensor inp, Tensor scale);
    // dinp = dout * scale (assign); dscale[C] += sum_rows(dout * inp); either may be empty
    void channel_scale_backward(Tensor dinp, Tensor dscale, Tensor dout, Tensor inp, Tensor scale);

    // ---- dropout: out = inp * keep / (1 - p), keep regenerated from `key` -----------------------
    // The first dimension is the example index (counter word 1); the rest is flattened (word 0),
    // so for a [B,T,C] tensor element (t, c) draws offset t*C + c whatever the padded length T.
    // Attention probabilities [B,NH,T,T] use offset (h*4096 + i)*4096 + j, for the same reason.
    // `example_offset` is the index of row 0 in the full optimizer-step batch, so micro-batches
    // draw the same masks as the whole batch. out may alias inp.
    void dropout_forward(Tensor out, Tensor inp, double p, PhiloxKey key, int example_offset);
    void dropout_backward(Tensor dinp, Tensor dout, double p, PhiloxKey key, int example_offset);

    // ---- fused: dropout + residual + LayerNorm (a post-LN block's end) --------------------------
    // res = dropout(res) + x, in place; out, mean, rstd = layernorm(res): dropout_forward,
    // accumulate and layernorm_forward in one pass over each row. res is [B, ...] as dropout's
    // inp (its first dimension the example), x the same shape.
    void dropout_add_layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor res, Tensor x, Tensor w, Tensor b,
                                       double eps, double p, PhiloxKey key, int example_offset);
    // Its backward: dres = d(res) through the LayerNorm from dout (assigned; dres may be dout),
    // dw, db += as layernorm_backward's, dbranch = dropout_backward(dres) (assigned; the gradient
    // of the dropped branch). layernorm_backward, copy and dropout_backward in one pass.
    void layernorm_dropout_backward(Tensor dbranch, Tensor dres, Tensor dw, Tensor db, Tensor dout, Tensor res,
                                    Tensor w, Tensor mean, Tensor rstd, double p, PhiloxKey key, int example_offset);

    // ---- embeddings: out[B,T,C] = wte[ids] + wpe[pos] + wtt[types] ------------------------------
    // wpe/pos and wtt/types may be empty (absent): OPT has no token types, and with project_in
    // its token rows are gathered alone.
    void embeddings_forward(Tensor out, Tensor ids, Tensor pos, Tensor types, Tensor wte, Tensor wpe, Tensor wtt);
    // dtable[V,C] += scatter of dout[B,T,C] rows by ids[B,T]
    void embedding_backward(Tensor dtable, Tensor dout, Tensor ids);

    // ---- multi-head self-attention core ---------------------------------------------------------
    // q, ctx [B,Tq,C]; k, v [B,Tk,C] (Tk = Tq, or more with prefix keys); probs [B,NH,Tq,Tk] =
    // softmax(q k^T / sqrt(HS)) over keys with key_mask[B,Tk] (I32, 1 = attend, 0 = padding),
    // saved for backward; ctx = dropout(probs) v. `causal` (decoders): query i also sees only keys
    // j <= i + (Tk - Tq), so prefix keys stay visible to every query. Backward needs no flag: the
    // masked probabilities are exactly 0.
    void attention_forward(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor key_mask,
                           int n_head, double p, PhiloxKey key, int example_offset, bool causal);
    void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                            Tensor probs, int n_head, double p, PhiloxKey key, int example_offset);

    // Tiled attention: the same function as attention_forward without ever holding [Tq,Tk].
    // Tiles of queries x keys with an online softmax; lse[B,NH,Tq] (F64 for F64 inputs, else F32)
    // keeps each query row's log-sum-exp of its scaled, masked scores (+inf for a row whose keys
    // are all padding: its probabilities are 0). Backward recomputes each tile's probabilities from
    // q, k and lse, and its dropout masks from the same Philox counters as attention_forward's, so
    // dropped entries are the same ones; it needs ctx for the row sums <dctx, ctx>. Results agree
    // with attention_forward/backward to rounding.
    void attention_tiled_forward(Tensor ctx, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor key_mask, int n_head,
                                 double p, PhiloxKey key, int example_offset, bool causal);
    void attention_tiled_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                  Tensor key_mask, Tensor ctx, Tensor lse, int n_head, double p, PhiloxKey key,
                                  int example_offset, bool causal);

    // ---- prefix-tuning: out[B,P+T,C] = [prefix[P,C] for every example; x[B,T,C]] --------------
    void prefix_concat_forward(Tensor out, Tensor prefix, Tensor x);
    // dprefix[P,C] += sum_b dout[b,:P]; dx = dout[:,P:] (+= when accumulate); dprefix may be empty
    void prefix_concat_backward(Tensor dprefix, Tensor dx, Tensor dout, bool accumulate);

    // ---- columns of a matrix: dst[R,c] = src[R, first : first + c] (VeRA's slices of its shared A) --
    void copy_columns(Tensor dst, Tensor src, std::int64_t first);

    // ---- weight normalisation by rows (DoRA): norm[R] = ||w[R,:]||_2, g[R] = m[R] / norm[R] ------
    void weight_norm_forward(Tensor g, Tensor norm, Tensor m, Tensor w);
    // dm[R] += dg / norm; dw[R,:] = -(dg m / norm^3) w[R,:] (assigned; dw may be empty: the norm
    // treated as a constant, as DoRA's detached norm is).
    void weight_norm_backward(Tensor dm, Tensor dw, Tensor dg, Tensor m, Tensor w, Tensor norm);

    // ---- first token (CLS) of each sequence: out[B,C] = inp[B,0,:] ----------------------------
    void first_token_forward(Tensor out, Tensor inp);
    // dinp[B,T,C]: dout at t = 0, and (unless accumulate) zero elsewhere
    void first_token_backward(Tensor dinp, Tensor dout, bool accumulate_dinp);

    // ---- losses: per-example losses[B]; the caller reduces --------------------------------------
    // logits[B,K], labels[B] I32; probs[B,K] saved. A negative label (Hugging Face's -100) marks a
    // row that is ignored: its loss and its gradient are 0.
    void cross_entropy_forward(Tensor losses, Tensor probs, Tensor logits, Tensor labels);
    // dlogits = (probs - onehot(labels)) * scale
    void cross_entropy_backward(Tensor dlogits, Tensor probs, Tensor labels, double scale);
    // preds[B,1], targets[B] (floating): losses = (preds - targets)^2
    void mse_forward(Tensor losses, Tensor preds, Tensor targets);
    void mse_backward(Tensor dpreds, Tensor preds, Tensor targets, double scale);

    // ---- reversible coupling (MEFT) ------------------------------------------------------------
    // A stream is I64 fixed point (value = X * 2^-kStreamFractionBits, |value| < 2^23:
    // stream_fixed.h), exactly invertible, or F64 (value = X), invertible up to rounding. A value
    // outside the I64 range throws StreamRangeError (CUDA: at the next synchronising call).
    // f is in the compute dtype, same element count.
    // Forward, in place: x <- x / m + f. For I64: x <- floor(x / m) + round(f * 2^bits), and the
    // remainder x - m*floor(x/m) in [0, m) goes to rem (U8, remainder_bytes(n, m) bytes, packed
    // remainder_bits(m) bits each). m = 1 needs no rem (pass an empty tensor).
    void coupling_forward(Tensor stream, Tensor rem, Tensor f, int m);
    // Inverse, in place: x <- m * (x - f) + rem, recovering the forward's input bit for bit (I64).
    void coupling_inverse(Tensor stream, Tensor rem, Tensor f, int m);
    void stream_read(Tensor out, Tensor stream);  // compute-dtype value of a stream
    void stream_write(Tensor stream, Tensor in);  // stream <- value (rounded for I64)

    // ---- optimizer --------------------------------------------------------------------------------
    // PyTorch AdamW: p *= 1 - lr*wd; m,v updated; p -= lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps)
    void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double beta1,
                      double beta2, double eps, double weight_decay, int step);

    virtual void synchronize() {}

    // Free and total bytes of the device this backend computes on; false for host memory.
    virtual bool device_memory(std::size_t* free_bytes, std::size_t* total_bytes) {
        (void)free_bytes;
        (void)total_bytes;
        return false;
    }

    // Bytes the backend holds for its ops' own temporaries outside the engine's arenas (attention
    // workspaces, reduction partials, pointer arrays): the high-water mark so far, since they are
    // kept for reuse. The shape-only backend plans the same number for a WorkspaceRule.
    virtual std::size_t op_workspace_bytes() const { return 0; }

protected:
    // The ops' implementations, called by the entry points above once the checks passed.
    virtual void fill_impl(Tensor t, double value) = 0;
    virtual void copy_impl(Tensor dst, Tensor src) = 0;
    virtual void accumulate_impl(Tensor dst, Tensor src) = 0;
    virtual void axpy_impl(Tensor dst, Tensor src, double alpha) = 0;
    virtual void add_impl(Tensor out, Tensor a, Tensor b) = 0;
    virtual void scale_impl(Tensor t, double s) = 0;
    virtual double sum_squares_impl(Tensor t) = 0;
    virtual void linear_forward_impl(Tensor out, Tensor inp, Tensor w, Tensor b) = 0;
    virtual void linear_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w,
                                      bool accumulate_dinp) = 0;
    virtual void layernorm_forward_impl(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor w, Tensor b,
                                        double eps) = 0;
    virtual void layernorm_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w,
                                         Tensor mean, Tensor rstd, bool accumulate_dinp) = 0;
    virtual void gelu_forward_impl(Tensor out, Tensor inp) = 0;
    virtual void gelu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) = 0;
    virtual void tanh_forward_impl(Tensor out, Tensor inp) = 0;
    virtual void tanh_backward_impl(Tensor dinp, Tensor dout, Tensor out) = 0;
    virtual void relu_forward_impl(Tensor out, Tensor inp) = 0;
    virtual void relu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) = 0;
    virtual void channel_scale_forward_impl(Tensor out, Tensor inp, Tensor scale) = 0;
    virtual void channel_scale_backward_impl(Tensor dinp, Tensor dscale, Tensor dout, Tensor inp, Tensor scale) = 0;
    virtual void dropout_forward_impl(Tensor out, Tensor inp, double p, PhiloxKey key, int example_offset) = 0;
    virtual void dropout_backward_impl(Tensor dinp, Tensor dout, double p, PhiloxKey key, int example_offset) = 0;
    // The fused ops' reference: the separate ops they replace, in order (backend.cpp). A backend
    // overrides them where one pass is faster; the results must equal these to rounding.
    virtual void dropout_add_layernorm_forward_impl(Tensor out, Tensor mean, Tensor rstd, Tensor res, Tensor x, Tensor w,
                                                    Tensor b, double eps, double p, PhiloxKey key, int example_offset);
    virtual void layernorm_dropout_backward_impl(Tensor dbranch, Tensor dres, Tensor dw, Tensor db, Tensor dout,
                                                 Tensor res, Tensor w, Tensor mean, Tensor rstd, double p, PhiloxKey key,
                                                 int example_offset);
    virtual void embeddings_forward_impl(Tensor out, Tensor ids, Tensor pos, Tensor types, Tensor wte, Tensor wpe,
                                         Tensor wtt) = 0;
    virtual void embedding_backward_impl(Tensor dtable, Tensor dout, Tensor ids) = 0;
    virtual void attention_forward_impl(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor key_mask,
                                        int n_head, double p, PhiloxKey key, int example_offset, bool causal) = 0;
    virtual void attention_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                         Tensor probs, int n_head, double p, PhiloxKey key, int example_offset) = 0;
    // Backends without a tiled kernel say so (Error naming the backend).
    virtual void attention_tiled_forward_impl(Tensor ctx, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor key_mask,
                                              int n_head, double p, PhiloxKey key, int example_offset, bool causal);
    virtual void attention_tiled_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                               Tensor key_mask, Tensor ctx, Tensor lse, int n_head, double p,
                                               PhiloxKey key, int example_offset, bool causal);
    // Backends without these say so (Error naming the backend).
    virtual void copy_columns_impl(Tensor dst, Tensor src, std::int64_t first);
    virtual void weight_norm_forward_impl(Tensor g, Tensor norm, Tensor m, Tensor w);
    virtual void weight_norm_backward_impl(Tensor dm, Tensor dw, Tensor dg, Tensor m, Tensor w, Tensor norm);
    virtual void prefix_concat_forward_impl(Tensor out, Tensor prefix, Tensor x) = 0;
    virtual void prefix_concat_backward_impl(Tensor dprefix, Tensor dx, Tensor dout, bool accumulate) = 0;
    virtual void first_token_forward_impl(Tensor out, Tensor inp) = 0;
    virtual void first_token_backward_impl(Tensor dinp, Tensor dout, bool accumulate_dinp) = 0;
    virtual void cross_entropy_forward_impl(Tensor losses, Tensor probs, Tensor logits, Tensor labels) = 0;
    virtual void cross_entropy_backward_impl(Tensor dlogits, Tensor probs, Tensor labels, double scale) = 0;
    virtual void mse_forward_impl(Tensor losses, Tensor preds, Tensor targets) = 0;
    virtual void mse_backward_impl(Tensor dpreds, Tensor preds, Tensor targets, double scale) = 0;
    virtual void coupling_forward_impl(Tensor stream, Tensor rem, Tensor f, int m) = 0;
    virtual void coupling_inverse_impl(Tensor stream, Tensor rem, Tensor f, int m) = 0;
    virtual void stream_read_impl(Tensor out, Tensor stream) = 0;
    virtual void stream_write_impl(Tensor stream, Tensor in) = 0;
    virtual void adamw_update_impl(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double beta1,
                                   double beta2, double eps, double weight_decay, int step) = 0;
};

}  // namespace meft
