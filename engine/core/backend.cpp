// backend.cpp — Backend's public entry points: each checks its op's shape and dtype contract
// (backend.h) once, for every backend, then calls the backend's implementation (`<op>_impl`).
// A failed check throws meft::Error("<op>: <the tensors, their shapes, what disagrees>").
#include "core/backend.h"

#include <initializer_list>
#include <string>

namespace meft {
namespace {

struct Arg {
    const char* name;
    const Tensor& t;
};

std::string show(const Arg& a) { return std::string(a.name) + " " + a.t.shape.str(); }

// Rows of a tensor seen as [rows, last dimension] (its leading dimensions multiplied).
std::int64_t rows(const Tensor& t) {
    std::int64_t n = 1;
    for (int i = 0; i + 1 < t.shape.ndim; ++i) n *= t.shape.d[i];
    return n;
}

// The checks of one call of one op.
class Check {
public:
    Check(const Backend& be, const char* op) : be_(be), op_(op) {}

    [[noreturn]] void fail(const std::string& what) const { throw Error(std::string(op_) + ": " + what); }

    // A tensor the op reads or writes whatever its other arguments: it may not be empty.
    void present(std::initializer_list<Arg> args) const {
        for (const Arg& a : args)
            if (!a.t) fail(std::string(a.name) + " is empty (no data)");
    }
    void ndim(const Arg& a, int n) const {
        if (a.t.shape.ndim != n) fail(show(a) + " must have " + std::to_string(n) + " dimensions");
    }
    void min_ndim(const Arg& a, int n) const {
        if (a.t.shape.ndim < n) fail(show(a) + " must have at least " + std::to_string(n) + " dimension(s)");
    }
    void dtype(const Arg& a, DType want) const {
        if (a.t.dtype != want)
            fail(show(a) + " is " + std::string(dtype_name(a.t.dtype)) + ", not " + std::string(dtype_name(want)));
    }
    void stream(const Arg& a) const {
        if (a.t.dtype != DType::I64 && a.t.dtype != DType::F64)
            fail(show(a) + " is " + std::string(dtype_name(a.t.dtype)) + ": streams are I64 or F64");
    }
    // The floating tensors of the call (empty ones skipped) share one dtype, F32 or F64.
    void floating(std::initializer_list<Arg> args) const {
        const Arg* first = nullptr;
        for (const Arg& a : args) {
            if (!a.t) continue;
            if (!first) {
                first = &a;
                if (!be_.computes_in(a.t.dtype))
                    fail(show(a) + " is " + std::string(dtype_name(a.t.dtype)) + "; ops compute in F32 or F64" +
                         (a.t.dtype == DType::F16 || a.t.dtype == DType::BF16 ? " (half precision is planned, not run)" : ""));
            } else if (a.t.dtype != first->t.dtype) {
                fail(show(a) + " is " + std::string(dtype_name(a.t.dtype)) + " but " + show(*first) + " is " +
                     std::string(dtype_name(first->t.dtype)));
            }
        }
    }
    // Two sizes that must be equal: "a [..] and b [..] disagree on <what>".
    void agree(const char* what, const Arg& a, std::int64_t av, const Arg& b, std::int64_t bv) const {
        if (av != bv)
            fail(show(a) + " and " + show(b) + " disagree on " + what + " (" + std::to_string(av) + " vs " +
                 std::to_string(bv) + ")");
    }
    void same_numel(const Arg& a, const Arg& b) const {
        if (a.t.numel() != b.t.numel())
            fail(show(a) + " and " + show(b) + " differ in element count (" + std::to_string(a.t.numel()) + " vs " +
                 std::to_string(b.t.numel()) + ")");
    }
    void same_shape(const Arg& a, const Arg& b) const {
        if (!(a.t.shape == b.t.shape)) fail(show(a) + " and " + show(b) + " must have the same shape");
    }
    // numel(a) == n, where n is `what` (e.g. "B*Tk") of the other arguments.
    void count(const Arg& a, std::int64_t n, const char* what) const {
        if (a.t.numel() != n)
            fail(show(a) + " has " + std::to_string(a.t.numel()) + " elements, not " + what + " = " + std::to_string(n));
    }
    // a is [rows, C] seen as a matrix: its last dimension is C and its leading ones multiply to N.
    void matrix(const Arg& a, std::int64_t N, std::int64_t C, const Arg& ref) const {
        min_ndim(a, 1);
        agree("C", a, a.t.dim(-1), ref, C);
        agree("N (the rows)", a, rows(a.t), ref, N);
    }

private:
    const Backend& be_;
    const char* op_;
};

// out, inp (and in backward a third operand) of a point-wise op: same element count and dtype.
void pointwise(const Backend& be, const char* op, std::initializer_list<Arg> args) {
    const Check c(be, op);
    c.present(args);
    c.floating(args);
    for (const Arg& a : args) c.same_numel(a, *args.begin());
}

// q [B,Tq,C], k and v [B,Tk,C], probs [B,NH,Tq,Tk], C % NH == 0; with dropout, Tq and Tk <= 4096.
void attention_shapes(const Check& c, const Arg& q, const Arg& k, const Arg& v, const Arg& probs, int n_head,
                      double p) {
    c.ndim(q, 3);
    c.ndim(k, 3);
    c.same_shape(v, k);
    c.agree("B", q, q.t.dim(0), k, k.t.dim(0));
    c.agree("C", q, q.t.dim(2), k, k.t.dim(2));
    const std::int64_t B = q.t.dim(0), Tq = q.t.dim(1), Tk = k.t.dim(1), C = q.t.dim(2);
    if (n_head < 1 || C % n_head != 0)
        c.fail(show(q) + ": C = " + std::to_string(C) + " is not divisible by n_head = " + std::to_string(n_head));
    c.ndim(probs, 4);
    if (probs.t.dim(0) != B || probs.t.dim(1) != n_head || probs.t.dim(2) != Tq || probs.t.dim(3) != Tk)
        c.fail(show(probs) + " is not [B, NH, Tq, Tk] = " + Shape{B, n_head, Tq, Tk}.str() + " of " + show(q) + " and " +
               show(k));
    if (p > 0 && (Tq > kAttentionDropoutStride || Tk > kAttentionDropoutStride))
        c.fail("attention dropout supports sequences up to " + std::to_string(kAttentionDropoutStride) + " tokens, not " +
               show(q) + " and " + show(k));
}

void coupling_shapes(const Backend& be, const char* op, const Tensor& stream, const Tensor& rem, const Tensor& f, int m) {
    const Check c(be, op);
    c.present({{"stream", stream}, {"f", f}});
    c.stream({"stream", stream});
    c.floating({{"f", f}});
    c.same_numel({"stream", stream}, {"f", f});
    if (m < 1 || m > 256) c.fail("divisor m = " + std::to_string(m) + " is outside [1, 256]");
    if (rem && m > 1) {
        c.dtype({"rem", rem}, DType::U8);
        c.count({"rem", rem}, remainder_bytes(stream.numel(), m), "remainder_bytes(numel(stream), m)");
    }
}

void stream_shapes(const Backend& be, const char* op, const Tensor& values, const char* values_name, const Tensor& stream) {
    const Check c(be, op);
    c.present({{values_name, values}, {"stream", stream}});
    c.stream({"stream", stream});
    c.floating({{values_name, values}});
    c.same_numel({values_name, values}, {"stream", stream});
}

}  // namespace

// ---- data movement ------------------------------------------------------------------------------

void Backend::fill(Tensor t, double value) {
    Check(*this, "fill").floating({{"t", t}});
    fill_impl(t, value);
}

void Backend::copy(Tensor dst, Tensor src) {
    const Check c(*this, "copy");
    if (dst.dtype != src.dtype)
        c.fail("dst " + dst.shape.str() + " is " + std::string(dtype_name(dst.dtype)) + " but src " + src.shape.str() +
               " is " + std::string(dtype_name(src.dtype)));
    c.same_numel({"dst", dst}, {"src", src});
    copy_impl(dst, src);
}

void Backend::accumulate(Tensor dst, Tensor src) {
    pointwise(*this, "accumulate", {{"dst", dst}, {"src", src}});
    accumulate_impl(dst, src);
}

void Backend::axpy(Tensor dst, Tensor src, double alpha) {
    pointwise(*this, "axpy", {{"dst", dst}, {"src", src}});
    axpy_impl(dst, src, alpha);
}

void Backend::add(Tensor out, Tensor a, Tensor b) {
    pointwise(*this, "add", {{"out", out}, {"a", a}, {"b", b}});
    add_impl(out, a, b);
}

void Backend::scale(Tensor t, double s) {
    Check(*this, "scale").floating({{"t", t}});
    scale_impl(t, s);
}

double Backend::sum_squares(Tensor t) {
    Check(*this, "sum_squares").floating({{"t", t}});
    return sum_squares_impl(t);
}

// ---- linear ---------------------------------------------------------------------------------------

void Backend::linear_forward(Tensor out, Tensor inp, Tensor w, Tensor b) {
    const Check c(*this, "linear_forward");
    const Arg O{"out", out}, I{"inp", inp}, W{"w", w}, Bi{"b", b};
    c.present({O, I, W});
    c.floating({O, I, W, Bi});
    c.ndim(W, 2);
    c.min_ndim(I, 1);
    c.min_ndim(O, 1);
    c.agree("C", I, inp.dim(-1), W, w.dim(1));
    c.agree("OC", O, out.dim(-1), W, w.dim(0));
    c.agree("N (the rows)", O, rows(out), I, rows(inp));
    if (b) c.count(Bi, w.dim(0), "OC");
    linear_forward_impl(out, inp, w, b);
}

void Backend::linear_backward(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w,
                              bool accumulate_dinp) {
    const Check c(*this, "linear_backward");
    const Arg DI{"dinp", dinp}, DW{"dw", dw}, DB{"db", db}, DO{"dout", dout}, I{"inp", inp}, W{"w", w};
    c.present({DO, W});
    if (dw) c.present({I});
    c.floating({DI, DW, DB, DO, I, W});
    c.ndim(W, 2);
    c.min_ndim(DO, 1);
    c.agree("OC", DO, dout.dim(-1), W, w.dim(0));
    const std::int64_t N = rows(dout), C = w.dim(1);
    if (inp) c.matrix(I, N, C, DO);
    if (dinp) c.matrix(DI, N, C, DO);
    if (dw) c.same_shape(DW, W);
    if (db) c.count(DB, w.dim(0), "OC");
    linear_backward_impl(dinp, dw, db, dout, inp, w, accumulate_dinp);
}

// ---- layernorm ------------------------------------------------------------------------------------

void Backend::layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor w, Tensor b, double eps) {
    const Check c(*this, "layernorm_forward");
    const Arg O{"out", out}, M{"mean", mean}, R{"rstd", rstd}, I{"inp", inp}, W{"w", w}, Bi{"b", b};
    c.present({O, M, R, I, W, Bi});
    c.floating({O, M, R, I, W, Bi});
    c.min_ndim(I, 1);
    const std::int64_t N = rows(inp), C = inp.dim(-1);
    c.matrix(O, N, C, I);
    c.count(M, N, "N");
    c.count(R, N, "N");
    c.count(W, C, "C");
    c.count(Bi, C, "C");
    layernorm_forward_impl(out, mean, rstd, inp, w, b, eps);
}

void Backend::layernorm_backward(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, Tensor mean,
                                 Tensor rstd, bool accumulate_dinp) {
    const Check c(*this, "layernorm_backward");
    const Arg DI{"dinp", dinp}, DW{"dw", dw}, DB{"db", db}, DO{"dout", dout}, I{"inp", inp}, W{"w", w},
        M{"mean", mean}, R{"rstd", rstd};
    c.present({DO, I, W, M, R});
    c.floating({DI, DW, DB, DO, I, W, M, R});
    c.min_ndim(I, 1);
    const std::int64_t N = rows(inp), C = inp.dim(-1);
    c.matrix(DO, N, C, I);
    if (dinp) c.matrix(DI, N, C, I);
    c.count(W, C, "C");
    if (dw) c.count(DW, C, "C");
    if (db) c.count(DB, C, "C");
    c.count(M, N, "N");
    c.count(R, N, "N");
    layernorm_backward_impl(dinp, dw, db, dout, inp, w, mean, rstd, accumulate_dinp);
}

// ---- point-wise -----------------------------------------------------------------------------------

void Backend::gelu_forward(Tensor out, Tensor inp) {
    pointwise(*this, "gelu_forward", {{"out", out}, {"inp", inp}});
    gelu_forward_impl(out, inp);
}
void Backend::gelu_backward(Tensor dinp, Tensor dout, Tensor inp) {
    pointwise(*this, "gelu_backward", {{"dinp", dinp}, {"dout", dout}, {"inp", inp}});
    gelu_backward_impl(dinp, dout, inp);
}
void Backend::tanh_forward(Tensor out, Tensor inp) {
    pointwise(*this, "tanh_forward", {{"out", out}, {"inp", inp}});
    tanh_forward_impl(out, inp);
}
void Backend::tanh_backward(Tensor dinp, Tensor dout, Tensor out) {
    pointwise(*this, "tanh_backward", {{"dinp", dinp}, {"dout", dout}, {"out", out}});
    tanh_backward_impl(dinp, dout, out);
}
void Backend::relu_forward(Tensor out, Tensor inp) {
    pointwise(*this, "relu_forward", {{"out", out}, {"inp", inp}});
    relu_forward_impl(out, inp);
}
void Backend::relu_backward(Tensor dinp, Tensor dout, Tensor inp) {
    pointwise(*this, "relu_backward", {{"dinp", dinp}, {"dout", dout}, {"inp", inp}});
    relu_backward_impl(dinp, dout, inp);
}

// ---- per-channel scaling --------------------------------------------------------------------------

void Backend::channel_scale_forward(Tensor out, Tensor inp, Tensor scale) {
    const Check c(*this, "channel_scale_forward");
    const Arg O{"out", out}, I{"inp", inp}, S{"scale", scale};
    c.present({O, I, S});
    c.floating({O, I, S});
    c.min_ndim(I, 1);
    c.same_numel(O, I);
    c.agree("C", I, inp.dim(-1), S, scale.numel());
    channel_scale_forward_impl(out, inp, scale);
}

void Backend::channel_scale_backward(Tensor dinp, Tensor dscale, Tensor dout, Tensor inp, Tensor scale) {
    const Check c(*this, "channel_scale_backward");
    const Arg DI{"dinp", dinp}, DS{"dscale", dscale}, DO{"dout", dout}, I{"inp", inp}, S{"scale", scale};
    c.present({DO, S});
    if (dscale) c.present({I});
    c.floating({DI, DS, DO, I, S});
    c.min_ndim(DO, 1);
    c.agree("C", DO, dout.dim(-1), S, scale.numel());
    if (dinp) c.same_numel(DI, DO);
    if (inp) c.same_numel(I, DO);
    if (dscale) c.count(DS, scale.numel(), "C");
    channel_scale_backward_impl(dinp, dscale, dout, inp, scale);
}

// ---- dropout --------------------------------------------------------------------------------------

void Backend::dropout_forward(Tensor out, Tensor inp, double p, PhiloxKey key, int example_offset) {
    pointwise(*this, "dropout_forward", {{"out", out}, {"inp", inp}});
    Check(*this, "dropout_forward").min_ndim({"inp", inp}, 1);
    dropout_forward_impl(out, inp, p, key, example_offset);
}

void Backend::dropout_backward(Tensor dinp, Tensor dout, double p, PhiloxKey key, int example_offset) {
    pointwise(*this, "dropout_backward", {{"dinp", dinp}, {"dout", dout}});
    Check(*this, "dropout_backward").min_ndim({"dout", dout}, 1);
    dropout_backward_impl(dinp, dout, p, key, example_offset);
}

// ---- fused: dropout + residual + LayerNorm ---------------------------------------------------------

void Backend::dropout_add_layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor res, Tensor x, Tensor w,
                                            Tensor b, double eps, double p, PhiloxKey key, int example_offset) {
    const Check c(*this, "dropout_add_layernorm_forward");
    const Arg O{"out", out}, M{"mean", mean}, R{"rstd", rstd}, Re{"res", res}, X{"x", x}, W{"w", w}, Bi{"b", b};
    c.present({O, M, R, Re, X, W, Bi});
    c.floating({O, M, R, Re, X, W, Bi});
    c.min_ndim(Re, 2);
    pointwise(*this, "dropout_add_layernorm_forward", {{"res", res}, {"x", x}, {"out", out}});
    const std::int64_t N = rows(res), C = res.dim(-1);
    c.count(M, N, "N");
    c.count(R, N, "N");
    c.count(W, C, "C");
    c.count(Bi, C, "C");
    dropout_add_layernorm_forward_impl(out, mean, rstd, res, x, w, b, eps, p, key, example_offset);
}

void Backend::layernorm_dropout_backward(Tensor dbranch, Tensor dres, Tensor dw, Tensor db, Tensor dout, Tensor res,
                                         Tensor w, Tensor mean, Tensor rstd, double p, PhiloxKey key,
                                         int example_offset) {
    const Check c(*this, "layernorm_dropout_backward");
    const Arg DBr{"dbranch", dbranch}, DR{"dres", dres}, DW{"dw", dw}, DB{"db", db}, DO{"dout", dout}, Re{"res", res},
        W{"w", w}, M{"mean", mean}, R{"rstd", rstd};
    c.present({DBr, DR, DO, Re, W, M, R});
    c.floating({DBr, DR, DW, DB, DO, Re, W, M, R});
    c.min_ndim(Re, 2);
    pointwise(*this, "layernorm_dropout_backward", {{"dout", dout}, {"res", res}, {"dres", dres}, {"dbranch", dbranch}});
    if (dbranch.data == dout.data || dbranch.data == dres.data)
        c.fail("dbranch must be a buffer of its own, not dout's or dres's");
    const std::int64_t N = rows(res), C = res.dim(-1);
    c.count(W, C, "C");
    if (dw) c.count(DW, C, "C");
    if (db) c.count(DB, C, "C");
    c.count(M, N, "N");
    c.count(R, N, "N");
    layernorm_dropout_backward_impl(dbranch, dres, dw, db, dout, res, w, mean, rstd, p, key, example_offset);
}

void Backend::dropout_add_layernorm_forward_impl(Tensor out, Tensor mean, Tensor rstd, Tensor res, Tensor x, Tensor w,
                                                 Tensor b, double eps, double p, PhiloxKey key, int example_offset) {
    dropout_forward(res, res, p, key, example_offset);
    accumulate(res, x);
    layernorm_forward(out, mean, rstd, res, w, b, eps);
}

void Backend::layernorm_dropout_backward_impl(Tensor dbranch, Tensor dres, Tensor dw, Tensor db, Tensor dout,
                                              Tensor res, Tensor w, Tensor mean, Tensor rstd, double p, PhiloxKey key,
                                              int example_offset) {
    layernorm_backward(dbranch, dw, db, dout, res, w, mean, rstd, false);
    copy(dres, dbranch);
    dropout_backward(dbranch, dbranch, p, key, example_offset);
}

// ---- embeddings -----------------------------------------------------------------------------------

void Backend::embeddings_forward(Tensor out, Tensor ids, Tensor pos, Tensor types, Tensor wte, Tensor wpe,
                                 Tensor wtt) {
    const Check c(*this, "embeddings_forward");
    const Arg O{"out", out}, Id{"ids", ids}, P{"pos", pos}, Ty{"types", types}, E{"wte", wte}, PE{"wpe", wpe},
        TE{"wtt", wtt};
    c.present({O, Id, E});
    c.floating({O, E, PE, TE});
    c.dtype(Id, DType::I32);
    c.ndim(E, 2);
    c.min_ndim(O, 1);
    const std::int64_t N = ids.numel(), C = wte.dim(1);
    c.agree("C", O, out.dim(-1), E, C);
    c.agree("the number of tokens", O, rows(out), Id, N);
    for (const auto& [table, index] : {std::pair{PE, P}, std::pair{TE, Ty}}) {
        if (!table.t) continue;  // absent: wpe/pos or wtt/types
        c.present({index});
        c.dtype(index, DType::I32);
        c.ndim(table, 2);
        c.agree("C", table, table.t.dim(1), E, C);
        c.agree("the number of tokens", index, index.t.numel(), Id, N);
    }
    embeddings_forward_impl(out, ids, pos, types, wte, wpe, wtt);
}

void Backend::embedding_backward(Tensor dtable, Tensor dout, Tensor ids) {
    const Check c(*this, "embedding_backward");
    const Arg DT{"dtable", dtable}, DO{"dout", dout}, Id{"ids", ids};
    c.present({DT, DO, Id});
    c.floating({DT, DO});
    c.dtype(Id, DType::I32);
    c.ndim(DT, 2);
    c.min_ndim(DO, 1);
    c.agree("C", DO, dout.dim(-1), DT, dtable.dim(1));
    c.agree("the number of tokens", DO, rows(dout), Id, ids.numel());
    embedding_backward_impl(dtable, dout, ids);
}

// ---- attention ------------------------------------------------------------------------------------

void Backend::attention_forward(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor key_mask, int n_head,
                                double p, PhiloxKey key, int example_offset, bool causal) {
    const Check c(*this, "attention_forward");
    const Arg X{"ctx", ctx}, P{"probs", probs}, Q{"q", q}, K{"k", k}, V{"v", v}, Mk{"key_mask", key_mask};
    c.present({X, P, Q, K, V, Mk});
    c.floating({X, P, Q, K, V});
    attention_shapes(c, Q, K, V, P, n_head, p);
    c.same_shape(X, Q);
    c.dtype(Mk, DType::I32);
    c.count(Mk, k.dim(0) * k.dim(1), "B*Tk");
    attention_forward_impl(ctx, probs, q, k, v, key_mask, n_head, p, key, example_offset, causal);
}

void Backend::attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                 Tensor probs, int n_head, double p, PhiloxKey key, int example_offset) {
    const Check c(*this, "attention_backward");
    const Arg DQ{"dq", dq}, DK{"dk", dk}, DV{"dv", dv}, DX{"dctx", dctx}, Q{"q", q}, K{"k", k}, V{"v", v},
        P{"probs", probs};
    c.present({DQ, DK, DV, DX, Q, K, V, P});
    c.floating({DQ, DK, DV, DX, Q, K, V, P});
    attention_shapes(c, Q, K, V, P, n_head, p);
    c.same_shape(DQ, Q);
    c.same_shape(DX, Q);
    c.same_shape(DK, K);
    c.same_shape(DV, K);
    attention_backward_impl(dq, dk, dv, dctx, q, k, v, probs, n_head, p, key, example_offset);
}

namespace {
// The [B, NH, Tq, Tk] probabilities a standard attention would hold (no data): the checks
// attention_shapes makes of them hold for the tiled ops too.
Tensor attention_probs_shape(const Tensor& q, const Tensor& k, int n_head) {
    const bool ok = q.shape.ndim == 3 && k.shape.ndim == 3;
    return Tensor{q.dtype, Shape{ok ? q.dim(0) : 0, n_head, ok ? q.dim(1) : 0, ok ? k.dim(1) : 0}, nullptr};
}

// lse[B,NH,Tq]: F64 for F64 inputs, else F32.
void lse_shape(const Check& c, const Arg& lse, const Tensor& q, int n_head) {
    c.dtype(lse, q.dtype == DType::F64 ? DType::F64 : DType::F32);
    c.ndim(lse, 3);
    if (lse.t.dim(0) != q.dim(0) || lse.t.dim(1) != n_head || lse.t.dim(2) != q.dim(1))
        c.fail(show(lse) + " is not [B, NH, Tq] = " + Shape{q.dim(0), n_head, q.dim(1)}.str() + " of " + show({"q", q}));
}
}  // namespace

void Backend::attention_tiled_forward(Tensor ctx, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor key_mask, int n_head,
                                      double p, PhiloxKey key, int example_offset, bool causal) {
    const Check c(*this, "attention_tiled_forward");
    const Arg X{"ctx", ctx}, L{"lse", lse}, Q{"q", q}, K{"k", k}, V{"v", v}, Mk{"key_mask", key_mask};
    c.present({X, L, Q, K, V, Mk});
    c.floating({X, Q, K, V});
    // The probabilities' shape stands in for the checks attention_shapes makes of them.
    const Tensor probs_shape = attention_probs_shape(q, k, n_head);
    attention_shapes(c, Q, K, V, {"probs", probs_shape}, n_head, p);
    c.same_shape(X, Q);
    lse_shape(c, L, q, n_head);
    c.dtype(Mk, DType::I32);
    c.count(Mk, k.dim(0) * k.dim(1), "B*Tk");
    attention_tiled_forward_impl(ctx, lse, q, k, v, key_mask, n_head, p, key, example_offset, causal);
}

void Backend::attention_tiled_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                       Tensor key_mask, Tensor ctx, Tensor lse, int n_head, double p, PhiloxKey key,
                                       int example_offset, bool causal) {
    const Check c(*this, "attention_tiled_backward");
    const Arg DQ{"dq", dq}, DK{"dk", dk}, DV{"dv", dv}, DX{"dctx", dctx}, Q{"q", q}, K{"k", k}, V{"v", v},
        Mk{"key_mask", key_mask}, X{"ctx", ctx}, L{"lse", lse};
    c.present({DQ, DK, DV, DX, Q, K, V, Mk, X, L});
    c.floating({DQ, DK, DV, DX, Q, K, V, X});
    const Tensor probs_shape = attention_probs_shape(q, k, n_head);
    attention_shapes(c, Q, K, V, {"probs", probs_shape}, n_head, p);
    c.same_shape(DQ, Q);
    c.same_shape(DX, Q);
    c.same_shape(X, Q);
    c.same_shape(DK, K);
    c.same_shape(DV, K);
    lse_shape(c, L, q, n_head);
    c.dtype(Mk, DType::I32);
    c.count(Mk, k.dim(0) * k.dim(1), "B*Tk");
    attention_tiled_backward_impl(dq, dk, dv, dctx, q, k, v, key_mask, ctx, lse, n_head, p, key, example_offset, causal);
}

void Backend::attention_tiled_forward_impl(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int, double, PhiloxKey, int, bool) {
    throw Error("attention_tiled_forward: the " + name() + " backend has no tiled attention (use training.attention \"standard\")");
}

void Backend::attention_tiled_backward_impl(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int,
                                            double, PhiloxKey, int, bool) {
    throw Error("attention_tiled_backward: the " + name() + " backend has no tiled attention (use training.attention \"standard\")");
}

// ---- prefix, first token --------------------------------------------------------------------------

void Backend::prefix_concat_forward(Tensor out, Tensor prefix, Tensor x) {
    const Check c(*this, "prefix_concat_forward");
    const Arg O{"out", out}, Pr{"prefix", prefix}, X{"x", x};
    c.present({O, Pr, X});
    c.floating({O, Pr, X});
    c.ndim(O, 3);
    c.ndim(Pr, 2);
    c.ndim(X, 3);
    c.agree("B", O, out.dim(0), X, x.dim(0));
    c.agree("C", O, out.dim(2), X, x.dim(2));
    c.agree("C", Pr, prefix.dim(1), X, x.dim(2));
    if (out.dim(1) != prefix.dim(0) + x.dim(1))
        c.fail(show(O) + " is not [B, P+T, C] for " + show(Pr) + " and " + show(X));
    prefix_concat_forward_impl(out, prefix, x);
}

void Backend::prefix_concat_backward(Tensor dprefix, Tensor dx, Tensor dout, bool accumulate) {
    const Check c(*this, "prefix_concat_backward");
    const Arg DP{"dprefix", dprefix}, DX{"dx", dx}, DO{"dout", dout};
    c.present({DX, DO});
    c.floating({DP, DX, DO});
    c.ndim(DO, 3);
    c.ndim(DX, 3);
    c.agree("B", DO, dout.dim(0), DX, dx.dim(0));
    c.agree("C", DO, dout.dim(2), DX, dx.dim(2));
    if (dout.dim(1) < dx.dim(1)) c.fail(show(DO) + " is shorter than " + show(DX) + ": not [B, P+T, C]");
    if (dprefix) {
        c.ndim(DP, 2);
        if (dprefix.dim(0) != dout.dim(1) - dx.dim(1) || dprefix.dim(1) != dx.dim(2))
            c.fail(show(DP) + " is not [P, C] for " + show(DO) + " and " + show(DX));
    }
    prefix_concat_backward_impl(dprefix, dx, dout, accumulate);
}

void Backend::copy_columns(Tensor dst, Tensor src, std::int64_t first) {
    const Check c(*this, "copy_columns");
    const Arg D{"dst", dst}, S{"src", src};
    c.present({D, S});
    c.floating({D, S});
    c.ndim(D, 2);
    c.ndim(S, 2);
    c.agree("rows", D, dst.dim(0), S, src.dim(0));
    if (first < 0 || first + dst.dim(1) > src.dim(1))
        c.fail("columns " + std::to_string(first) + " .. " + std::to_string(first + dst.dim(1)) + " of " + show(D) +
               " are not inside " + show(S));
    copy_columns_impl(dst, src, first);
}

void Backend::weight_norm_forward(Tensor g, Tensor norm, Tensor m, Tensor w) {
    const Check c(*this, "weight_norm_forward");
    const Arg G{"g", g}, N{"norm", norm}, M{"m", m}, W{"w", w};
    c.present({G, N, M, W});
    c.floating({G, N, M, W});
    c.ndim(W, 2);
    for (const Arg* a : {&G, &N, &M}) c.count(*a, w.dim(0), "R (rows of w)");
    weight_norm_forward_impl(g, norm, m, w);
}

void Backend::weight_norm_backward(Tensor dm, Tensor dw, Tensor dg, Tensor m, Tensor w, Tensor norm) {
    const Check c(*this, "weight_norm_backward");
    const Arg DM{"dm", dm}, DW{"dw", dw}, DG{"dg", dg}, M{"m", m}, W{"w", w}, N{"norm", norm};
    c.present({DM, DG, M, W, N});
    c.floating({DM, DW, DG, M, W, N});
    c.ndim(W, 2);
    for (const Arg* a : {&DM, &DG, &M, &N}) c.count(*a, w.dim(0), "R (rows of w)");
    if (dw) c.same_shape(DW, W);
    weight_norm_backward_impl(dm, dw, dg, m, w, norm);
}

void Backend::copy_columns_impl(Tensor, Tensor, std::int64_t) {
    throw Error("copy_columns: the " + name() + " backend does not have this op");
}
void Backend::weight_norm_forward_impl(Tensor, Tensor, Tensor, Tensor) {
    throw Error("weight_norm_forward: the " + name() + " backend does not have this op");
}
void Backend::weight_norm_backward_impl(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor) {
    throw Error("weight_norm_backward: the " + name() + " backend does not have this op");
}

void Backend::first_token_forward(Tensor out, Tensor inp) {
    const Check c(*this, "first_token_forward");
    const Arg O{"out", out}, I{"inp", inp};
    c.present({O, I});
    c.floating({O, I});
    c.ndim(I, 3);
    c.ndim(O, 2);
    c.agree("B", O, out.dim(0), I, inp.dim(0));
    c.agree("C", O, out.dim(1), I, inp.dim(2));
    first_token_forward_impl(out, inp);
}

void Backend::first_token_backward(Tensor dinp, Tensor dout, bool accumulate_dinp) {
    const Check c(*this, "first_token_backward");
    const Arg DI{"dinp", dinp}, DO{"dout", dout};
    c.present({DI, DO});
    c.floating({DI, DO});
    c.ndim(DI, 3);
    c.ndim(DO, 2);
    c.agree("B", DO, dout.dim(0), DI, dinp.dim(0));
    c.agree("C", DO, dout.dim(1), DI, dinp.dim(2));
    first_token_backward_impl(dinp, dout, accumulate_dinp);
}

// ---- losses ---------------------------------------------------------------------------------------

void Backend::cross_entropy_forward(Tensor losses, Tensor probs, Tensor logits, Tensor labels) {
    const Check c(*this, "cross_entropy_forward");
    const Arg Lo{"losses", losses}, P{"probs", probs}, Z{"logits", logits}, Y{"labels", labels};
    c.present({Lo, P, Z, Y});
    c.floating({Lo, P, Z});
    c.ndim(Z, 2);
    c.same_shape(P, Z);
    c.dtype(Y, DType::I32);
    c.count(Y, logits.dim(0), "B");
    c.count(Lo, logits.dim(0), "B");
    cross_entropy_forward_impl(losses, probs, logits, labels);
}

void Backend::cross_entropy_backward(Tensor dlogits, Tensor probs, Tensor labels, double scale) {
    const Check c(*this, "cross_entropy_backward");
    const Arg DZ{"dlogits", dlogits}, P{"probs", probs}, Y{"labels", labels};
    c.present({DZ, P, Y});
    c.floating({DZ, P});
    c.ndim(P, 2);
    c.same_shape(DZ, P);
    c.dtype(Y, DType::I32);
    c.count(Y, probs.dim(0), "B");
    cross_entropy_backward_impl(dlogits, probs, labels, scale);
}

void Backend::mse_forward(Tensor losses, Tensor preds, Tensor targets) {
    const Check c(*this, "mse_forward");
    const Arg Lo{"losses", losses}, X{"preds", preds}, T{"targets", targets};
    c.present({Lo, X, T});
    c.floating({Lo, X, T});
    c.min_ndim(X, 1);
    c.count(X, preds.dim(0), "B (one prediction per example)");
    c.count(T, preds.dim(0), "B");
    c.count(Lo, preds.dim(0), "B");
    mse_forward_impl(losses, preds, targets);
}

void Backend::mse_backward(Tensor dpreds, Tensor preds, Tensor targets, double scale) {
    const Check c(*this, "mse_backward");
    const Arg DX{"dpreds", dpreds}, X{"preds", preds}, T{"targets", targets};
    c.present({DX, X, T});
    c.floating({DX, X, T});
    c.min_ndim(X, 1);
    c.count(X, preds.dim(0), "B (one prediction per example)");
    c.count(T, preds.dim(0), "B");
    c.same_numel(DX, X);
    mse_backward_impl(dpreds, preds, targets, scale);
}

// ---- reversible coupling --------------------------------------------------------------------------

void Backend::coupling_forward(Tensor stream, Tensor rem, Tensor f, int m) {
    coupling_shapes(*this, "coupling_forward", stream, rem, f, m);
    coupling_forward_impl(stream, rem, f, m);
}

void Backend::coupling_inverse(Tensor stream, Tensor rem, Tensor f, int m) {
    coupling_shapes(*this, "coupling_inverse", stream, rem, f, m);
    coupling_inverse_impl(stream, rem, f, m);
}

void Backend::stream_read(Tensor out, Tensor stream) {
    stream_shapes(*this, "stream_read", out, "out", stream);
    stream_read_impl(out, stream);
}

void Backend::stream_write(Tensor stream, Tensor in) {
    stream_shapes(*this, "stream_write", in, "in", stream);
    stream_write_impl(stream, in);
}

// ---- optimizer ------------------------------------------------------------------------------------

void Backend::adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double beta1, double beta2,
                           double eps, double weight_decay, int step) {
    pointwise(*this, "adamw_update", {{"param", param}, {"grad", grad}, {"m", m}, {"v", v}});
    adamw_update_impl(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step);
}

}  // namespace meft
