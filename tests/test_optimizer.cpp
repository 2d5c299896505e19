// SPDX-License-Identifier: GPL-3.0-or-later
// test_optimizer.cpp — AdamW against PyTorch's torch.optim.AdamW update written out by hand, the
// linear warm-up schedule, gradient clipping and the evaluation metrics.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/cpu_backend.h"
#include "train/metrics.h"
#include "train/schedule.h"

using namespace meft;

namespace {

void set(Backend& be, const Tensor& t, std::vector<double> v) {
    ASSERT_EQ(static_cast<std::int64_t>(v.size()), t.numel());
    if (t.dtype == DType::F64) {
        be.upload(t, v.data());
    } else {
        std::vector<float> f(v.begin(), v.end());
        be.upload(t, f.data());
    }
}

std::vector<double> get(Backend& be, const Tensor& t) {
    std::vector<double> v(static_cast<std::size_t>(t.numel()));
    if (t.dtype == DType::F64) {
        be.download(v.data(), t);
    } else {
        std::vector<float> f(v.size());
        be.download(f.data(), t);
        std::copy(f.begin(), f.end(), v.begin());
    }
    return v;
}

// torch.optim.AdamW.step for one scalar (single-tensor, non-amsgrad, non-capturable path):
//   param.mul_(1 - lr * weight_decay)
//   exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   bias_correction1 = 1 - beta1 ** step; bias_correction2 = 1 - beta2 ** step
//   step_size = lr / bias_correction1
//   denom = (exp_avg_sq.sqrt() / sqrt(bias_correction2)).add_(eps)
//   param.addcdiv_(exp_avg, denom, value=-step_size)
struct TorchAdamWScalar {
    double p, m = 0, v = 0;
    int t = 0;
    void step(double g, double lr, double b1, double b2, double eps, double wd) {
        ++t;
        p *= 1 - lr * wd;
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
        const double denom = std::sqrt(v) / std::sqrt(bc2) + eps;
        p -= lr / bc1 * m / denom;
    }
};

class OptimizerTest : public ::testing::Test {
protected:
    void SetUp() override { be_ = make_cpu_backend(); }
    std::unique_ptr<Backend> be_;
};

TEST_F(OptimizerTest, AdamWMatchesPyTorchFormulaForThreeSteps) {
    ParameterStore ps(*be_, DType::F64);
    const int w = ps.declare("encoder.dense.weight", {1});
    const int b = ps.declare("encoder.dense.bias", {1});
    const int ln = ps.declare("encoder.LayerNorm.weight", {1});
    ps.materialize();
    EXPECT_TRUE(ps.at(w).decay);
    EXPECT_FALSE(ps.at(b).decay);
    EXPECT_FALSE(ps.at(ln).decay);

    AdamWConfig cfg;
    cfg.beta1 = 0.9;
    cfg.beta2 = 0.999;
    cfg.eps = 1e-8;
    cfg.weight_decay = 0.01;
    AdamW opt(ps, cfg);

    const double p0[3] = {1.0, -0.5, 2.0};
    set(*be_, ps.value(w), {p0[0]});
    set(*be_, ps.value(b), {p0[1]});
    set(*be_, ps.value(ln), {p0[2]});
    TorchAdamWScalar rw{p0[0]}, rb{p0[1]}, rln{p0[2]};

    const double grads[3][3] = {{0.5, -1.0, 0.25}, {-0.2, 0.3, 0.25}, {0.8, -0.05, -4.0}};
    const double lrs[3] = {0.1, 0.05, 0.02};
    for (int s = 0; s < 3; ++s) {
        set(*be_, ps.grad(w), {grads[s][0]});
        set(*be_, ps.grad(b), {grads[s][1]});
        set(*be_, ps.grad(ln), {grads[s][2]});
        opt.step(lrs[s]);
        EXPECT_EQ(opt.steps_done(), s + 1);
        rw.step(grads[s][0], lrs[s], 0.9, 0.999, 1e-8, 0.01);
        rb.step(grads[s][1], lrs[s], 0.9, 0.999, 1e-8, 0.0);   // ".bias": no decay
        rln.step(grads[s][2], lrs[s], 0.9, 0.999, 1e-8, 0.0);  // LayerNorm: no decay
        EXPECT_NEAR(get(*be_, ps.value(w))[0], rw.p, 1e-14) << "step " << s + 1;
        EXPECT_NEAR(get(*be_, ps.value(b))[0], rb.p, 1e-14) << "step " << s + 1;
        EXPECT_NEAR(get(*be_, ps.value(ln))[0], rln.p, 1e-14) << "step " << s + 1;
        EXPECT_NEAR(get(*be_, ps.at(w).m)[0], rw.m, 1e-15);
        EXPECT_NEAR(get(*be_, ps.at(w).v)[0], rw.v, 1e-15);
        if (s == 0) {
            // Worked by hand: at step 1, m_hat = g and v_hat = g^2, so the update is lr * g / (|g| + eps).
            EXPECT_NEAR(get(*be_, ps.value(w))[0], 1.0 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
            EXPECT_NEAR(get(*be_, ps.value(w))[0], 0.899000002, 1e-12);
            EXPECT_NEAR(get(*be_, ps.value(b))[0], -0.5 + 0.1 * 1.0 / (1.0 + 1e-8), 1e-15);
            EXPECT_NEAR(get(*be_, ps.at(w).m)[0], 0.05, 1e-16);
            EXPECT_NEAR(get(*be_, ps.at(w).v)[0], 0.001 * 0.25, 1e-18);
        }
    }
    // Step 2 of the weight, by hand: m = 0.9*0.05 + 0.1*(-0.2) = 0.025; v = 0.999*0.00025 + 0.001*0.04
    // = 0.00028975; m_hat = 0.025/0.19, v_hat = 0.00028975/0.001999.
    {
        double p = 0.899000002 * (1 - 0.05 * 0.01);
        p -= 0.05 * (0.025 / 0.19) / (std::sqrt(0.00028975 / 0.001999) + 1e-8);
        TorchAdamWScalar two{1.0};
        two.step(0.5, 0.1, 0.9, 0.999, 1e-8, 0.01);
        two.step(-0.2, 0.05, 0.9, 0.999, 1e-8, 0.01);
        EXPECT_NEAR(two.p, p, 1e-9);
    }
}

TEST_F(OptimizerTest, AdamWFloat32AndFrozenParameters) {
    ParameterStore ps(*be_, DType::F32);
    const int a = ps.declare("a.weight", {2});
    const int f = ps.declare("frozen.weight", {2});
    ps.set_trainable([](const Parameter& p) { return p.name != "frozen.weight"; });
    ps.materialize();
    EXPECT_FALSE(ps.grad(f));
    EXPECT_EQ(ps.count(true), 2);
    EXPECT_EQ(ps.count(false), 4);
    set(*be_, ps.value(a), {0.3, -0.7});
    set(*be_, ps.value(f), {1.5, 2.5});
    AdamWConfig cfg;
    cfg.weight_decay = 0.1;
    AdamW opt(ps, cfg);
    TorchAdamWScalar r0{double(0.3f)}, r1{double(-0.7f)};
    for (int s = 0; s < 3; ++s) {
        const double g0 = 0.1 * (s + 1), g1 = -0.3 + 0.2 * s;
        set(*be_, ps.grad(a), {g0, g1});
        opt.step(0.01);
        r0.step(double(float(g0)), 0.01, cfg.beta1, cfg.beta2, cfg.eps, 0.1);
        r1.step(double(float(g1)), 0.01, cfg.beta1, cfg.beta2, cfg.eps, 0.1);
    }
    const std::vector<double> got = get(*be_, ps.value(a));
    EXPECT_NEAR(got[0], r0.p, 1e-6);
    EXPECT_NEAR(got[1], r1.p, 1e-6);
    EXPECT_EQ(get(*be_, ps.value(f)), (std::vector<double>{1.5, 2.5}));
}

TEST(Schedule, LinearWarmupThenLinearDecay) {
    LinearSchedule s{1e-3, 10, 110};
    EXPECT_DOUBLE_EQ(s.lr(0), 0.0);
    EXPECT_DOUBLE_EQ(s.lr(1), 1e-4);
    EXPECT_DOUBLE_EQ(s.lr(5), 5e-4);
    EXPECT_DOUBLE_EQ(s.lr(10), 1e-3);  // peak at the end of warm-up
    EXPECT_DOUBLE_EQ(s.lr(35), 7.5e-4);
    EXPECT_DOUBLE_EQ(s.lr(60), 5e-4);
    EXPECT_DOUBLE_EQ(s.lr(109), 1e-5);
    EXPECT_DOUBLE_EQ(s.lr(110), 0.0);  // zero at total
    EXPECT_DOUBLE_EQ(s.lr(150), 0.0);  // and stays there
    for (int t = 1; t < 110; ++t) {
        if (t <= 10) EXPECT_GT(s.lr(t), s.lr(t - 1)) << t;
        else EXPECT_LT(s.lr(t), s.lr(t - 1)) << t;
    }

    LinearSchedule nowarm{2e-5, 0, 4};
    EXPECT_DOUBLE_EQ(nowarm.lr(0), 2e-5);
    EXPECT_DOUBLE_EQ(nowarm.lr(1), 1.5e-5);
    EXPECT_DOUBLE_EQ(nowarm.lr(2), 1e-5);
    EXPECT_DOUBLE_EQ(nowarm.lr(4), 0.0);
}

TEST(Schedule, WarmupStepsUseCeil) {
    EXPECT_EQ(warmup_steps_for(0.1, 95), 10);   // 9.5 -> 10
    EXPECT_EQ(warmup_steps_for(0.25, 10), 3);   // 2.5 -> 3
    EXPECT_EQ(warmup_steps_for(0.5, 10), 5);
    EXPECT_EQ(warmup_steps_for(0.1, 1), 1);     // 0.1 -> 1
    EXPECT_EQ(warmup_steps_for(0.01, 101), 2);  // 1.01 -> 2
    EXPECT_EQ(warmup_steps_for(0.0, 100), 0);
    EXPECT_EQ(warmup_steps_for(1.0, 7), 7);
}

TEST_F(OptimizerTest, ClipGradNormScalesToMaxNormAndReturnsPreClipNorm) {
    ParameterStore ps(*be_, DType::F64);
    const int a = ps.declare("a.weight", {2});
    const int b = ps.declare("b.bias", {1});
    const int f = ps.declare("frozen.weight", {1});
    ps.set_trainable([](const Parameter& p) { return p.name != "frozen.weight"; });
    ps.materialize();
    (void)f;
    auto reset = [&] {
        set(*be_, ps.grad(a), {3.0, 0.0});
        set(*be_, ps.grad(b), {-4.0});
    };

    reset();
    EXPECT_DOUBLE_EQ(global_grad_norm(ps), 5.0);
    EXPECT_DOUBLE_EQ(clip_grad_norm(ps, 1.0), 5.0);
    const double k = 1.0 / (5.0 + 1e-6);  // torch.nn.utils.clip_grad_norm_
    EXPECT_NEAR(get(*be_, ps.grad(a))[0], 3.0 * k, 1e-15);
    EXPECT_EQ(get(*be_, ps.grad(a))[1], 0.0);
    EXPECT_NEAR(get(*be_, ps.grad(b))[0], -4.0 * k, 1e-15);
    EXPECT_NEAR(global_grad_norm(ps), 1.0, 1e-6);

    reset();  // already within the limit: untouched
    EXPECT_DOUBLE_EQ(clip_grad_norm(ps, 10.0), 5.0);
    EXPECT_EQ(get(*be_, ps.grad(a)), (std::vector<double>{3.0, 0.0}));
    EXPECT_EQ(get(*be_, ps.grad(b)), (std::vector<double>{-4.0}));

    reset();  // max_norm <= 0 disables clipping
    EXPECT_DOUBLE_EQ(clip_grad_norm(ps, 0.0), 5.0);
    EXPECT_EQ(get(*be_, ps.grad(b)), (std::vector<double>{-4.0}));

    ps.zero_grads();
    EXPECT_EQ(clip_grad_norm(ps, 1.0), 0.0);
    EXPECT_EQ(get(*be_, ps.grad(a)), (std::vector<double>{0.0, 0.0}));
}

TEST(Metrics, AccuracyAndPearsonOnKnownInputs) {
    EXPECT_DOUBLE_EQ(accuracy({0, 1, 2, 1}, {0, 1, 1, 1}), 0.75);
    EXPECT_DOUBLE_EQ(accuracy({1, 1}, {1, 1}), 1.0);
    EXPECT_DOUBLE_EQ(accuracy({0, 0, 0}, {1, 2, 1}), 0.0);
    EXPECT_DOUBLE_EQ(accuracy({}, {}), 0.0);

    EXPECT_NEAR(pearson({1, 2, 3, 4}, {2, 4, 6, 8}), 1.0, 1e-15);
    EXPECT_NEAR(pearson({1, 2, 3, 4}, {8, 6, 4, 2}), -1.0, 1e-15);
    // mx = 3, my = 4; sxy = 6, sxx = 10, syy = 6 -> r = 6 / sqrt(60)
    EXPECT_NEAR(pearson({1, 2, 3, 4, 5}, {2, 4, 5, 4, 5}), 6.0 / std::sqrt(60.0), 1e-15);
    EXPECT_NEAR(pearson({1, 2, 3, 4, 5}, {2, 4, 5, 4, 5}), 0.7745966692414834, 1e-12);
    EXPECT_DOUBLE_EQ(pearson({1, 2, 3}, {5, 5, 5}), 0.0);  // undefined: reported as 0

    EXPECT_EQ(argmax_rows({0.1, 0.9, 2.0, -1.0, 0.3, 0.3}, 2), (std::vector<int>{1, 0, 0}));
    EXPECT_EQ(argmax_rows({0.1, 0.2, 0.3, 3.0, 2.0, 1.0}, 3), (std::vector<int>{2, 0}));

    const auto cls = task_metrics({0.1, 0.9, 2.0, -1.0, 0.3, 0.4}, 2, {1, 1, 1}, {});
    ASSERT_EQ(cls.size(), 1u);
    EXPECT_NEAR(cls.at("accuracy"), 2.0 / 3.0, 1e-15);

    const auto reg = task_metrics({1.0, 2.0, 4.0}, 1, {}, {1.0, 3.0, 3.0});
    EXPECT_NEAR(reg.at("mse"), 2.0 / 3.0, 1e-15);
    EXPECT_NEAR(reg.at("pearson"), pearson({1, 2, 4}, {1, 3, 3}), 1e-15);
}

}  // namespace
