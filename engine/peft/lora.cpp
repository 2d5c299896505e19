#include "peft/lora.h"

#include <cmath>

namespace meft {

LoraWeights declare_lora(ParameterStore& ps, const std::string& prefix, int in, int out, const MethodConfig& m) {
    const LoraSettings& s = m.lora;
    LoraWeights w;
    w.frozen_a = m.kind == MethodKind::LoraFA;
    w.a = ps.declare(prefix + ".lora_A.weight", {s.r, in}, Init::uniform(1.0 / std::sqrt(double(in))), true, w.frozen_a);
    w.b = ps.declare(prefix + ".lora_B.weight", {out, s.r}, Init::zeros(), true);
    w.scale = m.lora_scale();
    return w;
}

Tensor lora_forward(const PeftCall& c, const LoraWeights& w, Tensor out, Tensor x, Arena& saved, int layer,
                    const std::string& tag) {
    // Shapes keep the leading [B, T] so dropout sees examples in dimension 0.
    const std::int64_t r = c.ps.at(w.a).shape[0];
    Tensor xa = saved.alloc(x.dtype, x.shape.with_last(r), layer, tag + ".lora_xa");
    Tensor xd = c.tmp.alloc(x.dtype, x.shape), y = c.tmp.alloc(x.dtype, out.shape);
    c.be.dropout_forward(xd, x, c.dropout, c.key, c.example_offset);
    c.be.linear_forward(xa, xd, c.ps.value(w.a), Tensor{});
    c.be.linear_forward(y, xa, c.ps.value(w.b), Tensor{});
    c.be.axpy(out, y, w.scale);
    return xa;
}

void lora_backward(const PeftCall& c, const LoraWeights& w, Tensor dx, Tensor dout, Tensor x, Tensor xa) {
    Backend& be = c.be;
    Tensor g = c.tmp.alloc(dout.dtype, dout.shape), dxa = c.tmp.alloc(dout.dtype, xa.shape);
    const Shape in_shape = dx.shape;  // x's (LoRA-FA may pass no x)
    Tensor xd = w.frozen_a ? Tensor{} : c.tmp.alloc(dout.dtype, in_shape), dxd = c.tmp.alloc(dout.dtype, in_shape);
    be.copy(g, dout);
    be.scale(g, w.scale);                                                        // d(branch) = scale * dout
    be.linear_backward(dxa, c.ps.grad(w.b), Tensor{}, g, xa, c.ps.value(w.b), false);
    if (w.frozen_a) {  // LoRA-FA: d(Dropout(x)) = dxa A, no dA, so x is never read
        be.linear_backward(dxd, Tensor{}, Tensor{}, dxa, Tensor{}, c.ps.value(w.a), false);
    } else {
        be.dropout_forward(xd, x, c.dropout, c.key, c.example_offset);  // regenerate Dropout(x)
        be.linear_backward(dxd, c.ps.grad(w.a), Tensor{}, dxa, xd, c.ps.value(w.a), false);
    }
    be.dropout_backward(dxd, dxd, c.dropout, c.key, c.example_offset);
    be.accumulate(dx, dxd);
}

namespace {

class LoraBranch final : public LinearEdit {
public:
    LoraBranch(LoraWeights w, double dropout) : w_(w), dropout_(dropout) {}
    Tensor forward(const EditCall& c, Tensor out, Tensor x, Arena& saved, int layer,
                   const std::string& name) const override {
        return lora_forward(call(c), w_, out, x, saved, layer, name);
    }
    void backward(const EditCall& c, Tensor dx, Tensor dout, Tensor x, Tensor kept) const override {
        lora_backward(call(c), w_, dx, dout, x, kept);
    }
    bool needs_input() const override { return !w_.frozen_a; }

private:
    PeftCall call(const EditCall& c) const { return branch_call(c, dropout_); }
    LoraWeights w_;
    double dropout_;
};

class LoraStack final : public StackEdit {
public:
    explicit LoraStack(MethodConfig m) : m_(std::move(m)) {}
    std::unique_ptr<LinearEdit> linear(const SiteSpec& site, ParameterStore& ps) const override {
        if (!m_.lora.targets_site(site_name(site.site))) return nullptr;
        return std::make_unique<LoraBranch>(declare_lora(ps, site.module, site.in, site.out, m_), m_.lora.dropout);
    }

private:
    MethodConfig m_;
};

}  // namespace

std::unique_ptr<StackEdit> lora_stack(const MethodConfig& m) { return std::make_unique<LoraStack>(m); }

}  // namespace meft
