#include "peft/adapter.h"

#include <algorithm>

namespace meft {

AdapterWeights declare_adapter(ParameterStore& ps, const std::string& prefix, int C, const AdapterSettings& s,
                               bool relu) {
    AdapterWeights w;
    w.relu = relu;
    const std::int64_t r = s.bottleneck;
    w.down_w = ps.declare(prefix + ".down.weight", {r, C}, Init::normal(s.init_std), true);
    w.down_b = ps.declare(prefix + ".down.bias", {r}, Init::zeros(), true);
    w.up_w = ps.declare(prefix + ".up.weight", {C, r}, s.zero_init_up ? Init::zeros() : Init::normal(s.init_std), true);
    w.up_b = ps.declare(prefix + ".up.bias", {C}, Init::zeros(), true);
    return w;
}

void adapter_forward(const PeftCall& c, const AdapterWeights& w, AdapterActs& a, Arena& saved, int layer,
                     const std::string& tag, Tensor out, double scale, bool accumulate) {
    Backend& be = c.be;
    // Shapes keep the leading [B, T] so dropout sees examples in dimension 0.
    const Shape rs = a.inp.shape.with_last(c.ps.at(w.down_w).shape[0]);
    a.pre = saved.alloc(a.inp.dtype, rs, layer, tag + ".pre");
    a.act = saved.alloc(a.inp.dtype, rs, layer, tag + ".act");
    Tensor h = c.tmp.alloc(a.inp.dtype, rs);
    be.linear_forward(a.pre, a.inp, c.ps.value(w.down_w), c.ps.value(w.down_b));
    be.activation_forward(w.relu, a.act, a.pre);
    be.dropout_forward(h, a.act, c.dropout, c.key, c.example_offset);
    if (!accumulate && scale == 1.0) {
        be.linear_forward(out, h, c.ps.value(w.up_w), c.ps.value(w.up_b));
        return;
    }
    Tensor y = c.tmp.alloc(a.inp.dtype, a.inp.shape);
    be.linear_forward(y, h, c.ps.value(w.up_w), c.ps.value(w.up_b));
    if (!accumulate) be.fill(out, 0.0);
    be.axpy(out, y, scale);
}

void adapter_backward(const PeftCall& c, const AdapterWeights& w, const AdapterActs& a, Tensor dinp, Tensor dout,
                      double scale) {
    Backend& be = c.be;
    Tensor g = dout;
    if (scale != 1.0) {  // d(scale * A) = scale * dA
        g = c.tmp.alloc(dout.dtype, dout.shape);
        be.copy(g, dout);
        be.scale(g, scale);
    }
    Tensor h = c.tmp.alloc(dout.dtype, a.pre.shape), dh = c.tmp.alloc(dout.dtype, a.pre.shape);
    be.dropout_forward(h, a.act, c.dropout, c.key, c.example_offset);  // the up-projection's input
    be.linear_backward(dh, c.ps.grad(w.up_w), c.ps.grad(w.up_b), g, h, c.ps.value(w.up_w), false);
    be.dropout_backward(dh, dh, c.dropout, c.key, c.example_offset);
    be.activation_backward(w.relu, dh, dh, a.pre);
    be.linear_backward(dinp, c.ps.grad(w.down_w), c.ps.grad(w.down_b), dh, a.inp, c.ps.value(w.down_w), true);
}

namespace {

class AdapterBranch final : public BranchEdit {
public:
    AdapterBranch(AdapterWeights w, double scale) : w_(w), scale_(scale) {}
    void forward(const EditCall& c, BranchActs& a, Arena& saved, int layer, const std::string& name, Tensor out,
                 bool accumulate) const override {
        adapter_forward(call(c), w_, a, saved, layer, name, out, scale_, accumulate);
    }
    void backward(const EditCall& c, const BranchActs& a, Tensor dinp, Tensor dout) const override {
        adapter_backward(call(c), w_, a, dinp, dout, scale_);
    }

private:
    static PeftCall call(const EditCall& c) {
        return PeftCall{c.be, c.ps, c.tmp, c.hidden_dropout, c.key, c.example_offset};
    }
    AdapterWeights w_;
    double scale_;
};

class AdapterStack final : public StackEdit {
public:
    AdapterStack(AdapterSettings s, std::vector<Site> sites) : s_(s), sites_(std::move(sites)) {}
    std::unique_ptr<BranchEdit> branch(const SiteSpec& site, ParameterStore& ps) const override {
        if (std::find(sites_.begin(), sites_.end(), site.site) == sites_.end()) return nullptr;
        return adapter_branch(site, ps, s_, site.site == Site::FfnParallel ? s_.scaling : 1.0);
    }

private:
    AdapterSettings s_;
    std::vector<Site> sites_;
};

}  // namespace

std::unique_ptr<BranchEdit> adapter_branch(const SiteSpec& site, ParameterStore& ps, const AdapterSettings& s,
                                           double scale) {
    return std::make_unique<AdapterBranch>(declare_adapter(ps, site.module, site.out, s, site.relu), scale);
}

std::unique_ptr<StackEdit> adapter_stack(const AdapterSettings& s, std::vector<Site> sites) {
    return std::make_unique<AdapterStack>(s, std::move(sites));
}

}  // namespace meft
