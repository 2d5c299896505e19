#include "peft/vera.h"

#include <algorithm>
#include <cmath>

#include "peft/call.h"

namespace meft {

namespace {

struct VeraWeights {
    int a = -1, b = -1;                 // the shared vera_A [r, in_max], vera_B [out_max, r]
    int lambda_b = -1, lambda_d = -1;   // this projection's [out] and [r]
};

class VeraBranch final : public LinearEdit {
public:
    VeraBranch(VeraWeights w, double dropout) : w_(w), dropout_(dropout) {}

    Tensor forward(const EditCall& ec, Tensor out, Tensor x, Arena& saved, int layer,
                   const std::string& name) const override {
        const PeftCall c = call(ec);
        Backend& be = c.be;
        const std::int64_t r = c.ps.at(w_.lambda_d).shape[0];
        const DType dt = x.dtype;
        Tensor xa = saved.alloc(dt, x.shape.with_last(r), layer, name + ".vera_xa");
        Tensor xd = c.tmp.alloc(dt, x.shape);
        be.dropout_forward(xd, x, c.dropout, c.key, c.example_offset);
        be.linear_forward(xa, xd, a_slice(c, x.dim(-1)), Tensor{});
        Tensor t = branch_out(c, xa, out.shape);
        be.channel_scale_forward(t, t, c.ps.value(w_.lambda_b));
        be.accumulate(out, t);
        return xa;
    }

    void backward(const EditCall& ec, Tensor dx, Tensor dout, Tensor, Tensor xa) const override {
        const PeftCall c = call(ec);
        Backend& be = c.be;
        ParameterStore& ps = c.ps;
        const DType dt = dout.dtype;
        const std::int64_t out_features = dout.dim(-1), in_features = dx.dim(-1);
        const Tensor Bs = ps.value(w_.b).rows(0, out_features);
        // t = B (λ_d ⊙ x_a), recomputed: dλ_b = Σ dout ⊙ t, dt = λ_b ⊙ dout.
        Tensor t = branch_out(c, xa, dout.shape), dt_ = c.tmp.alloc(dt, dout.shape);
        be.channel_scale_backward(dt_, ps.grad(w_.lambda_b), dout, t, ps.value(w_.lambda_b));
        Tensor dh = c.tmp.alloc(dt, xa.shape), dxa = c.tmp.alloc(dt, xa.shape);
        be.linear_backward(dh, Tensor{}, Tensor{}, dt_, Tensor{}, Bs, false);
        be.channel_scale_backward(dxa, ps.grad(w_.lambda_d), dh, xa, ps.value(w_.lambda_d));
        Tensor dxd = c.tmp.alloc(dt, dx.shape);
        be.linear_backward(dxd, Tensor{}, Tensor{}, dxa, Tensor{}, a_slice(c, in_features), false);
        be.dropout_backward(dxd, dxd, c.dropout, c.key, c.example_offset);
        be.accumulate(dx, dxd);
    }

    bool needs_input() const override { return false; }

private:
    PeftCall call(const EditCall& c) const { return branch_call(c, dropout_); }
    // A[:, :in]: the shared A itself when it is exactly this wide, else a copy of its columns.
    Tensor a_slice(const PeftCall& c, std::int64_t in) const {
        const Tensor A = c.ps.value(w_.a);
        if (A.dim(1) == in) return A;
        Tensor s = c.tmp.alloc(A.dtype, Shape{A.dim(0), in});
        c.be.copy_columns(s, A, 0);
        return s;
    }
    // B[:out] (λ_d ⊙ x_a), in c.tmp.
    Tensor branch_out(const PeftCall& c, Tensor xa, Shape out_shape) const {
        Tensor h = c.tmp.alloc(xa.dtype, xa.shape), t = c.tmp.alloc(xa.dtype, out_shape);
        c.be.channel_scale_forward(h, xa, c.ps.value(w_.lambda_d));
        c.be.linear_forward(t, h, c.ps.value(w_.b).rows(0, out_shape[out_shape.ndim - 1]), Tensor{});
        return t;
    }
    VeraWeights w_;
    double dropout_;
};

class VeraStack final : public StackEdit {
public:
    VeraStack(MethodConfig m, int a, int b) : m_(std::move(m)), a_(a), b_(b) {}
    std::unique_ptr<LinearEdit> linear(const SiteSpec& site, ParameterStore& ps) const override {
        if (!m_.vera.targets_site(site_name(site.site))) return nullptr;
        MEFT_CHECK(site.in <= ps.at(a_).shape[1] && site.out <= ps.at(b_).shape[0],
                   site.module + " is wider than VeRA's shared matrices");
        VeraWeights w{a_, b_, -1, -1};
        w.lambda_b = ps.declare(site.module + ".vera_lambda_b", {site.out}, Init::zeros(), true);
        w.lambda_d = ps.declare(site.module + ".vera_lambda_d", {m_.vera.r}, Init::constant(m_.vera.d_initial), true);
        return std::make_unique<VeraBranch>(w, m_.vera.dropout);
    }

private:
    MethodConfig m_;
    int a_, b_;
};

}  // namespace

std::unique_ptr<StackEdit> vera_stack(const MethodConfig& m, const ModelConfig& cfg, ParameterStore& ps) {
    int a = ps.index_of("vera_A"), b = ps.index_of("vera_B");
    if (a < 0) {
        // Widest input and output among the targeted projections: the FFN's intermediate width
        // where ffn_out (input) or ffn_in (output) is targeted, else the hidden size.
        const int C = cfg.hidden_size, I = cfg.intermediate_size, r = m.vera.r;
        const int in_max = m.vera.targets_site("ffn_out") ? std::max(C, I) : C;
        const int out_max = m.vera.targets_site("ffn_in") ? std::max(C, I) : C;
        a = ps.declare("vera_A", {r, in_max}, Init::uniform(1.0 / std::sqrt(double(in_max))), true, true);
        b = ps.declare("vera_B", {out_max, r}, Init::uniform(1.0 / std::sqrt(double(r))), true, true);
    }
    return std::make_unique<VeraStack>(m, a, b);
}

}  // namespace meft
