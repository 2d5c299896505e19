#include "peft/adapter.h"

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

}  // namespace meft
