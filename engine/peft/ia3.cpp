#include "peft/ia3.h"

namespace meft {

namespace {

class Ia3Scale final : public ScaleEdit {
public:
    explicit Ia3Scale(int s) : s_(s) {}
    void forward(const EditCall& c, Tensor out, Tensor inp) const override {
        c.be.channel_scale_forward(out, inp, c.ps.value(s_));
    }
    void backward(const EditCall& c, Tensor dinp, Tensor dout, Tensor inp) const override {
        c.be.channel_scale_backward(dinp, c.ps.grad(s_), dout, inp, c.ps.value(s_));
    }

private:
    int s_;  // the [C] scaling vector
};

class Ia3Stack final : public StackEdit {
public:
    std::unique_ptr<ScaleEdit> scale(const SiteSpec& site, ParameterStore& ps) const override {
        return std::make_unique<Ia3Scale>(ps.declare(site.module + ".ia3_l", {site.out}, Init::ones(), true));
    }
};

}  // namespace

std::unique_ptr<StackEdit> ia3_stack() { return std::make_unique<Ia3Stack>(); }

}  // namespace meft
