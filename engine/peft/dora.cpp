#include "peft/dora.h"

#include "peft/call.h"
#include "peft/lora.h"

namespace meft {

namespace {

struct DoraWeights {
    LoraWeights lora;   // A [r, in], B [out, r], scale s
    int weight = -1;    // the projection's frozen W [out, in]
    int magnitude = -1; // m [out]
    bool detach_norm = true;
};

// What forward and backward both compute from the weights and x: the row scale g and the two
// [N, out] products y = W x_d and z = y + s · B (A x_d).
struct DoraTerms {
    Tensor v, g, norm;  // V = W + s·B·A [out, in]; g = m / ||V|| and ||V|| [out]
    Tensor xd, y, z;    // Dropout(x); W x_d; W x_d + s · B x_a
};

// forward: `xa` is written (A x_d); backward: it is the kept one.
DoraTerms terms(const PeftCall& c, const DoraWeights& w, Tensor x, Tensor xa, bool forward) {
    Backend& be = c.be;
    const Tensor W = c.ps.value(w.weight), A = c.ps.value(w.lora.a), B = c.ps.value(w.lora.b);
    const DType dt = x.dtype;
    DoraTerms t;
    t.v = c.tmp.alloc(dt, W.shape);
    t.g = c.tmp.alloc(dt, Shape{W.dim(0)});
    t.norm = c.tmp.alloc(dt, Shape{W.dim(0)});
    Tensor sb = c.tmp.alloc(dt, B.shape);
    be.copy(t.v, W);
    be.copy(sb, B);
    be.scale(sb, w.lora.scale);
    be.linear_backward(t.v, Tensor{}, Tensor{}, sb, Tensor{}, A, true);  // V = W + (sB) A
    be.weight_norm_forward(t.g, t.norm, c.ps.value(w.magnitude), t.v);
    const Shape out_shape = x.shape.with_last(W.dim(0));
    t.xd = c.tmp.alloc(dt, x.shape);
    be.dropout_forward(t.xd, x, c.dropout, c.key, c.example_offset);
    if (forward) be.linear_forward(xa, t.xd, A, Tensor{});
    t.y = c.tmp.alloc(dt, out_shape);
    t.z = c.tmp.alloc(dt, out_shape);
    be.linear_forward(t.y, t.xd, W, Tensor{});
    be.linear_forward(t.z, xa, B, Tensor{});
    be.scale(t.z, w.lora.scale);
    be.accumulate(t.z, t.y);
    return t;
}

class DoraBranch final : public LinearEdit {
public:
    DoraBranch(DoraWeights w, double dropout) : w_(w), dropout_(dropout) {}

    Tensor forward(const EditCall& ec, Tensor out, Tensor x, Arena& saved, int layer,
                   const std::string& name) const override {
        const PeftCall c = call(ec);
        const std::int64_t r = c.ps.at(w_.lora.a).shape[0];
        Tensor xa = saved.alloc(x.dtype, x.shape.with_last(r), layer, name + ".lora_xa");
        const DoraTerms t = terms(c, w_, x, xa, true);
        // out += g ⊙ z - y, formed apart first so that g = 1, B = 0 adds exactly zero.
        Tensor u = c.tmp.alloc(out.dtype, out.shape);
        c.be.channel_scale_forward(u, t.z, t.g);
        c.be.axpy(u, t.y, -1.0);
        c.be.accumulate(out, u);
        return xa;
    }

    void backward(const EditCall& ec, Tensor dx, Tensor dout, Tensor x, Tensor xa) const override {
        const PeftCall c = call(ec);
        Backend& be = c.be;
        ParameterStore& ps = c.ps;
        const Tensor W = ps.value(w_.weight), A = ps.value(w_.lora.a), B = ps.value(w_.lora.b);
        const DType dt = dout.dtype;
        const DoraTerms t = terms(c, w_, x, xa, false);
        // out = ... + g ⊙ z - y:  dz = g ⊙ dout, dg = Σ_tokens dout ⊙ z, dy = (g - 1) ⊙ dout.
        Tensor dz = c.tmp.alloc(dt, dout.shape), dg = c.tmp.alloc(dt, t.g.shape);
        be.fill(dg, 0.0);
        be.channel_scale_backward(dz, dg, dout, t.z, t.g);
        Tensor dv = w_.detach_norm ? Tensor{} : c.tmp.alloc(dt, W.shape);
        be.weight_norm_backward(ps.grad(w_.magnitude), dv, dg, ps.value(w_.magnitude), t.v, t.norm);
        Tensor dy = c.tmp.alloc(dt, dout.shape);
        be.copy(dy, dz);
        be.axpy(dy, dout, -1.0);
        Tensor dxd = c.tmp.alloc(dt, x.shape), dxa = c.tmp.alloc(dt, xa.shape);
        be.linear_backward(dxd, Tensor{}, Tensor{}, dy, Tensor{}, W, false);  // y = W x_d (W frozen)
        be.scale(dz, w_.lora.scale);                                           // z's s · B x_a part
        be.linear_backward(dxa, ps.grad(w_.lora.b), Tensor{}, dz, xa, B, false);
        be.linear_backward(dxd, ps.grad(w_.lora.a), Tensor{}, dxa, t.xd, A, true);
        if (dv) {  // V = W + s·B·A: dB += s dV A^T, dA += s B^T dV
            be.scale(dv, w_.lora.scale);
            Tensor db = c.tmp.alloc(dt, B.shape);
            be.linear_forward(db, dv, A, Tensor{});
            be.accumulate(ps.grad(w_.lora.b), db);
            be.linear_backward(Tensor{}, ps.grad(w_.lora.a), Tensor{}, B, dv, A, false);
        }
        be.dropout_backward(dxd, dxd, c.dropout, c.key, c.example_offset);
        be.accumulate(dx, dxd);
    }

private:
    PeftCall call(const EditCall& c) const { return branch_call(c, dropout_); }
    DoraWeights w_;
    double dropout_;
};

class DoraStack final : public StackEdit {
public:
    explicit DoraStack(MethodConfig m) : m_(std::move(m)) {}
    std::unique_ptr<LinearEdit> linear(const SiteSpec& site, ParameterStore& ps) const override {
        if (!m_.lora.targets_site(site_name(site.site))) return nullptr;
        MEFT_CHECK(site.weight >= 0, "DoRA needs the projection's weight at " + site.module);
        DoraWeights w;
        w.lora = declare_lora(ps, site.module, site.in, site.out, m_);
        w.weight = site.weight;
        w.magnitude = ps.declare(site.module + ".lora_magnitude_vector", {site.out}, Init::row_norms(site.weight), true);
        w.detach_norm = m_.lora.detach_norm;
        return std::make_unique<DoraBranch>(w, m_.lora.dropout);
    }

private:
    MethodConfig m_;
};

}  // namespace

std::unique_ptr<StackEdit> dora_stack(const MethodConfig& m) { return std::make_unique<DoraStack>(m); }

}  // namespace meft
