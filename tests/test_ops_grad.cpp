// Finite-difference gradient checks (float64) for every op of the CPU reference backend, plus
// the accumulate-vs-assign rules of the backward ops and float32/float64 agreement.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <type_traits>
#include <vector>

#include "core/cpu_backend.h"
#include "gradcheck.h"

using namespace meft;
using meft::test::Buf;
using meft::test::check_grad;
using meft::test::dot;
using meft::test::randn;

namespace {

constexpr double kTol = 1e-6;

class OpsGrad : public ::testing::Test {
protected:
    std::unique_ptr<Backend> be = make_cpu_backend();
};

TEST_F(OpsGrad, Linear) {
    const int N = 5, C = 4, OC = 3;
    Buf x = randn({N, C}, 1), w = randn({OC, C}, 2), b = randn({OC}, 3), g = randn({N, OC}, 4);
    auto loss = [&] {
        Buf out({N, OC});
        be->linear_forward(out.t(), x.t(), w.t(), b.t());
        return dot(out.v, g.v);
    };
    Buf dx({N, C}), dw({OC, C}), db({OC});
    be->linear_backward(dx.t(), dw.t(), db.t(), g.t(), x.t(), w.t(), false);
    EXPECT_LT(check_grad(x.v, dx.v, loss).rel(), kTol);
    EXPECT_LT(check_grad(w.v, dw.v, loss).rel(), kTol);
    EXPECT_LT(check_grad(b.v, db.v, loss).rel(), kTol);

    // Parameter gradients accumulate; the input gradient assigns unless asked to accumulate.
    Buf dx2({N, C}, 7.0), dw2 = dw, db2 = db;
    be->linear_backward(dx2.t(), dw2.t(), db2.t(), g.t(), x.t(), w.t(), false);
    for (std::size_t i = 0; i < dw.v.size(); ++i) EXPECT_NEAR(dw2.v[i], 2 * dw.v[i], 1e-12);
    for (std::size_t i = 0; i < db.v.size(); ++i) EXPECT_NEAR(db2.v[i], 2 * db.v[i], 1e-12);
    for (std::size_t i = 0; i < dx.v.size(); ++i) EXPECT_NEAR(dx2.v[i], dx.v[i], 1e-12);
    be->linear_backward(dx2.t(), Tensor{}, Tensor{}, g.t(), x.t(), w.t(), true);
    for (std::size_t i = 0; i < dx.v.size(); ++i) EXPECT_NEAR(dx2.v[i], 2 * dx.v[i], 1e-12);
}

TEST_F(OpsGrad, LayerNorm) {
    const int N = 4, C = 6;
    Buf x = randn({N, C}, 5), w = randn({C}, 6), b = randn({C}, 7), g = randn({N, C}, 8);
    auto fwd = [&](Buf& out, Buf& mean, Buf& rstd) { be->layernorm_forward(out.t(), mean.t(), rstd.t(), x.t(), w.t(), b.t(), 1e-5); };
    auto loss = [&] {
        Buf out({N, C}), mean({N}), rstd({N});
        fwd(out, mean, rstd);
        return dot(out.v, g.v);
    };
    Buf out({N, C}), mean({N}), rstd({N});
    fwd(out, mean, rstd);
    // normalised rows: mean 0, variance 1 before the affine part
    Buf dx({N, C}), dw({C}), db({C});
    be->layernorm_backward(dx.t(), dw.t(), db.t(), g.t(), x.t(), w.t(), mean.t(), rstd.t(), false);
    EXPECT_LT(check_grad(x.v, dx.v, loss).rel(), kTol);
    EXPECT_LT(check_grad(w.v, dw.v, loss).rel(), kTol);
    EXPECT_LT(check_grad(b.v, db.v, loss).rel(), kTol);
}

// The fused end of a post-LN block: res = dropout(res) + x, out = LN(res), and its backward.
// Float64 finite differences through the whole function (the dropout mask is fixed by its key),
// then bit-for-bit equality with the separate ops it replaces (the reference), in float64 and
// float32, dropout on and off, dres a buffer of its own or dout itself.
TEST_F(OpsGrad, DropoutAddLayerNorm) {
    const int B = 3, T = 5, C = 37, off = 2;
    const double p = 0.25, eps = 1e-5;
    const PhiloxKey key = philox_key(77, 3, dropout_site(1, 2));
    Buf r0 = randn({B, T, C}, 41), x = randn({B, T, C}, 42), w = randn({C}, 43), b = randn({C}, 44), g = randn({B, T, C}, 45);
    auto fwd = [&](Buf& out, Buf& mean, Buf& rstd, Buf& res) {
        res = r0;
        be->dropout_add_layernorm_forward(out.t(), mean.t(), rstd.t(), res.t(), x.t(), w.t(), b.t(), eps, p, key, off);
    };
    auto loss = [&] {
        Buf out({B, T, C}), mean({B * T}), rstd({B * T}), res({B, T, C});
        fwd(out, mean, rstd, res);
        return dot(out.v, g.v);
    };
    Buf out({B, T, C}), mean({B * T}), rstd({B * T}), res({B, T, C});
    fwd(out, mean, rstd, res);
    Buf dbranch({B, T, C}), dres({B, T, C}), dw({C}), db({C});
    be->layernorm_dropout_backward(dbranch.t(), dres.t(), dw.t(), db.t(), g.t(), res.t(), w.t(), mean.t(), rstd.t(), p, key, off);
    EXPECT_LT(check_grad(r0.v, dbranch.v, loss).rel(), kTol);  // the branch before dropout
    EXPECT_LT(check_grad(x.v, dres.v, loss).rel(), kTol);      // the residual
    EXPECT_LT(check_grad(w.v, dw.v, loss).rel(), kTol);
    EXPECT_LT(check_grad(b.v, db.v, loss).rel(), kTol);

    auto same_as_reference = [&](auto zero, double prob, bool dres_is_dout) {
        using T_ = decltype(zero);
        const DType dt = std::is_same_v<T_, float> ? DType::F32 : DType::F64;
        auto vec = [](const Buf& v) { return std::vector<T_>(v.v.begin(), v.v.end()); };
        auto t = [dt](std::vector<T_>& v, Shape sh) { return Tensor{dt, sh, v.data()}; };
        const Shape hs{B, T, C}, rs{B * T}, cs{C};
        std::vector<T_> xv = vec(x), wv = vec(w), bv = vec(b);
        // forward: fused vs dropout_forward + accumulate + layernorm_forward
        std::vector<T_> res_f = vec(r0), out_f(res_f.size()), m_f(B * T), s_f(B * T);
        std::vector<T_> res_r = vec(r0), out_r(res_r.size()), m_r(B * T), s_r(B * T);
        be->dropout_add_layernorm_forward(t(out_f, hs), t(m_f, rs), t(s_f, rs), t(res_f, hs), t(xv, hs), t(wv, cs), t(bv, cs),
                                          eps, prob, key, off);
        be->dropout_forward(t(res_r, hs), t(res_r, hs), prob, key, off);
        be->accumulate(t(res_r, hs), t(xv, hs));
        be->layernorm_forward(t(out_r, hs), t(m_r, rs), t(s_r, rs), t(res_r, hs), t(wv, cs), t(bv, cs), eps);
        EXPECT_EQ(res_f, res_r);
        EXPECT_EQ(out_f, out_r);
        EXPECT_EQ(m_f, m_r);
        EXPECT_EQ(s_f, s_r);
        // backward: fused vs layernorm_backward + copy + dropout_backward; dw, db accumulate
        std::vector<T_> g_f = vec(g), dbr_f(g_f.size()), dres_f(g_f.size()), dw_f(C, T_(0.5)), db_f(C, T_(-0.25));
        std::vector<T_> g_r = vec(g), dbr_r(g_r.size()), dres_r(g_r.size()), dw_r(C, T_(0.5)), db_r(C, T_(-0.25));
        Tensor dres_fused = dres_is_dout ? t(g_f, hs) : t(dres_f, hs);
        be->layernorm_dropout_backward(t(dbr_f, hs), dres_fused, t(dw_f, cs), t(db_f, cs), t(g_f, hs), t(res_f, hs), t(wv, cs),
                                       t(m_f, rs), t(s_f, rs), prob, key, off);
        be->layernorm_backward(t(dbr_r, hs), t(dw_r, cs), t(db_r, cs), t(g_r, hs), t(res_r, hs), t(wv, cs), t(m_r, rs),
                               t(s_r, rs), false);
        be->copy(t(dres_r, hs), t(dbr_r, hs));
        be->dropout_backward(t(dbr_r, hs), t(dbr_r, hs), prob, key, off);
        EXPECT_EQ(dbr_f, dbr_r);
        EXPECT_EQ(dres_is_dout ? g_f : dres_f, dres_r);
        EXPECT_EQ(dw_f, dw_r);
        EXPECT_EQ(db_f, db_r);
    };
    for (double prob : {0.0, p})
        for (bool alias : {false, true}) {
            SCOPED_TRACE("p=" + std::to_string(prob) + (alias ? ", dres is dout" : ""));
            same_as_reference(0.0f, prob, alias);
            same_as_reference(0.0, prob, alias);
        }
    // dbranch must be a buffer of its own
    EXPECT_THROW(be->layernorm_dropout_backward(g.t(), dres.t(), dw.t(), db.t(), g.t(), res.t(), w.t(), mean.t(), rstd.t(), p,
                                                key, off),
                 Error);
}

TEST_F(OpsGrad, GeluAndTanh) {
    Buf x = randn({3, 7}, 9, 2.0), g = randn({3, 7}, 10);
    {
        auto loss = [&] {
            Buf out({3, 7});
            be->gelu_forward(out.t(), x.t());
            return dot(out.v, g.v);
        };
        Buf dx({3, 7});
        be->gelu_backward(dx.t(), g.t(), x.t());
        EXPECT_LT(check_grad(x.v, dx.v, loss).rel(), kTol);
        // erf form, not the tanh approximation: gelu(1) = 0.5 * (1 + erf(1/sqrt(2)))
        Buf one({1}, 1.0), y({1});
        be->gelu_forward(y.t(), one.t());
        EXPECT_NEAR(y.v[0], 0.8413447460685429, 1e-15);
    }
    {
        auto loss = [&] {
            Buf out({3, 7});
            be->tanh_forward(out.t(), x.t());
            return dot(out.v, g.v);
        };
        Buf y({3, 7}), dx({3, 7});
        be->tanh_forward(y.t(), x.t());
        be->tanh_backward(dx.t(), g.t(), y.t());
        EXPECT_LT(check_grad(x.v, dx.v, loss).rel(), kTol);
    }
}

TEST_F(OpsGrad, Relu) {
    Buf x = randn({3, 7}, 41, 2.0), g = randn({3, 7}, 42);
    for (double& e : x.v)
        if (std::abs(e) < 1e-3) e = 0.5;  // keep finite differences away from the kink
    auto loss = [&] {
        Buf out({3, 7});
        be->relu_forward(out.t(), x.t());
        return dot(out.v, g.v);
    };
    Buf y({3, 7}), dx({3, 7});
    be->relu_forward(y.t(), x.t());
    be->relu_backward(dx.t(), g.t(), x.t());
    EXPECT_LT(check_grad(x.v, dx.v, loss).rel(), kTol);
    for (std::size_t i = 0; i < x.v.size(); ++i) {
        EXPECT_EQ(y.v[i], x.v[i] > 0 ? x.v[i] : 0.0);
        if (x.v[i] < 0) {
            EXPECT_EQ(dx.v[i], 0.0);
        }
    }
}

TEST_F(OpsGrad, DropoutMasksAreRegeneratedExactly) {
    const int B = 4, M = 1000;
    const double p = 0.3;
    const PhiloxKey key = philox_key(123, 7, dropout_site(2, 1));
    Buf x = randn({B, M}, 11), g = randn({B, M}, 12);
    auto loss = [&] {
        Buf out({B, M});
        be->dropout_forward(out.t(), x.t(), p, key, 0);
        return dot(out.v, g.v);
    };
    Buf out({B, M}), dx({B, M});
    be->dropout_forward(out.t(), x.t(), p, key, 0);
    be->dropout_backward(dx.t(), g.t(), p, key, 0);
    EXPECT_LT(check_grad(x.v, dx.v, loss, {0, 1, 2, 3, 500, 999, 1000, 3999}).rel(), kTol);
    int dropped = 0;
    for (std::size_t i = 0; i < out.v.size(); ++i) {
        if (out.v[i] == 0.0) {
            ++dropped;
            EXPECT_EQ(dx.v[i], 0.0);  // the same elements are dropped in backward
        } else {
            EXPECT_NEAR(out.v[i], x.v[i] / (1 - p), 1e-15);
            EXPECT_NEAR(dx.v[i], g.v[i] / (1 - p), 1e-15);
        }
    }
    EXPECT_NEAR(dropped / double(B * M), p, 0.03);
    // Rows keep their masks when the batch is split: row 2 alone with example_offset 2.
    Buf row2({1, M}), x2({1, M});
    std::copy(x.v.begin() + 2 * M, x.v.begin() + 3 * M, x2.v.begin());
    be->dropout_forward(row2.t(), x2.t(), p, key, 2);
    for (int j = 0; j < M; ++j) EXPECT_EQ(row2.v[j], out.v[2 * M + j]);
    // A different step gives a different mask.
    Buf other({B, M});
    be->dropout_forward(other.t(), x.t(), p, philox_key(123, 8, dropout_site(2, 1)), 0);
    int same = 0;
    for (std::size_t i = 0; i < out.v.size(); ++i) same += (out.v[i] == 0.0) == (other.v[i] == 0.0);
    EXPECT_LT(same, static_cast<int>(out.v.size()) - 100);
}

TEST_F(OpsGrad, Embeddings) {
    const int B = 2, T = 5, C = 3, V = 7, P = 6, TV = 2;
    std::vector<std::int32_t> ids = {1, 3, 3, 0, 6, 2, 2, 5, 1, 1}, pos = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4},
                              types = {0, 0, 1, 1, 1, 0, 1, 0, 1, 0};
    Tensor tid{DType::I32, {B, T}, ids.data()}, tpos{DType::I32, {B, T}, pos.data()}, ttyp{DType::I32, {B, T}, types.data()};
    Buf wte = randn({V, C}, 13), wpe = randn({P, C}, 14), wtt = randn({TV, C}, 15), g = randn({B, T, C}, 16);
    auto loss = [&] {
        Buf out({B, T, C});
        be->embeddings_forward(out.t(), tid, tpos, ttyp, wte.t(), wpe.t(), wtt.t());
        return dot(out.v, g.v);
    };
    Buf dte({V, C}), dpe({P, C}), dtt({TV, C});
    be->embedding_backward(dte.t(), g.t(), tid);
    be->embedding_backward(dpe.t(), g.t(), tpos);
    be->embedding_backward(dtt.t(), g.t(), ttyp);
    EXPECT_LT(check_grad(wte.v, dte.v, loss).rel(), kTol);
    EXPECT_LT(check_grad(wpe.v, dpe.v, loss).rel(), kTol);
    EXPECT_LT(check_grad(wtt.v, dtt.v, loss).rel(), kTol);
}

void attention_case(Backend& be, double p) {
    const int B = 2, T = 5, NH = 2, C = 6;
    std::vector<std::int32_t> mask = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    Tensor tm{DType::I32, {B, T}, mask.data()};
    const PhiloxKey key = philox_key(99, 3, dropout_site(0, 0));
    Buf q = randn({B, T, C}, 17), k = randn({B, T, C}, 18), v = randn({B, T, C}, 19), g = randn({B, T, C}, 20);
    auto loss = [&] {
        Buf ctx({B, T, C}), probs({B, NH, T, T});
        be.attention_forward(ctx.t(), probs.t(), q.t(), k.t(), v.t(), tm, NH, p, key, 0, false);
        return dot(ctx.v, g.v);
    };
    Buf ctx({B, T, C}), probs({B, NH, T, T});
    be.attention_forward(ctx.t(), probs.t(), q.t(), k.t(), v.t(), tm, NH, p, key, 0, false);
    // padded keys get exactly zero probability; rows sum to one
    for (int h = 0; h < NH; ++h)
        for (int i = 0; i < T; ++i) {
            const double* row = probs.v.data() + ((1 * NH + h) * T + i) * T;
            EXPECT_EQ(row[3], 0.0);
            EXPECT_EQ(row[4], 0.0);
            EXPECT_NEAR(row[0] + row[1] + row[2], 1.0, 1e-14);
        }
    Buf dq({B, T, C}), dk({B, T, C}), dv({B, T, C});
    be.attention_backward(dq.t(), dk.t(), dv.t(), g.t(), q.t(), k.t(), v.t(), probs.t(), NH, p, key, 0);
    EXPECT_LT(check_grad(q.v, dq.v, loss).rel(), kTol) << "p=" << p;
    EXPECT_LT(check_grad(k.v, dk.v, loss).rel(), kTol) << "p=" << p;
    EXPECT_LT(check_grad(v.v, dv.v, loss).rel(), kTol) << "p=" << p;
    // keys that are padding receive no gradient
    for (int t = 3; t < 5; ++t)
        for (int c = 0; c < C; ++c) EXPECT_EQ(dk.v[(1 * T + t) * C + c], 0.0);
}

TEST_F(OpsGrad, AttentionWithPaddingMask) { attention_case(*be, 0.0); }
TEST_F(OpsGrad, AttentionWithDropout) { attention_case(*be, 0.25); }

// Causal attention (decoders), with two prefix keys every query sees: query i attends keys
// j <= i + 2; later keys get probability exactly 0 and no gradient from that query.
TEST_F(OpsGrad, CausalAttentionWithPrefixKeys) {
    const int B = 2, Tq = 4, P = 2, Tk = Tq + P, NH = 2, C = 6;
    std::vector<std::int32_t> mask = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    Tensor tm{DType::I32, {B, Tk}, mask.data()};
    const PhiloxKey key = philox_key(7, 1, dropout_site(0, 0));
    Buf q = randn({B, Tq, C}, 31), k = randn({B, Tk, C}, 32), v = randn({B, Tk, C}, 33), g = randn({B, Tq, C}, 34);
    for (double p : {0.0, 0.25}) {
        auto loss = [&] {
            Buf ctx({B, Tq, C}), probs({B, NH, Tq, Tk});
            be->attention_forward(ctx.t(), probs.t(), q.t(), k.t(), v.t(), tm, NH, p, key, 0, true);
            return dot(ctx.v, g.v);
        };
        Buf ctx({B, Tq, C}), probs({B, NH, Tq, Tk});
        be->attention_forward(ctx.t(), probs.t(), q.t(), k.t(), v.t(), tm, NH, p, key, 0, true);
        for (int b = 0; b < B; ++b)
            for (int h = 0; h < NH; ++h)
                for (int i = 0; i < Tq; ++i) {
                    const double* row = probs.v.data() + ((b * NH + h) * Tq + i) * Tk;
                    double sum = 0;
                    for (int j = 0; j < Tk; ++j) {
                        if (j > i + P || !mask[b * Tk + j]) {
                            EXPECT_EQ(row[j], 0.0) << "b=" << b << " i=" << i << " j=" << j;
                        }
                        sum += row[j];
                    }
                    EXPECT_NEAR(sum, 1.0, 1e-14);
                }
        // A query's output does not depend on later keys: change the last key and value.
        Buf k2 = k, v2 = v, ctx2({B, Tq, C}), probs2({B, NH, Tq, Tk});
        for (int c = 0; c < C; ++c) k2.v[(0 * Tk + Tk - 1) * C + c] += 3.0, v2.v[(0 * Tk + Tk - 1) * C + c] -= 2.0;
        be->attention_forward(ctx2.t(), probs2.t(), q.t(), k2.t(), v2.t(), tm, NH, p, key, 0, true);
        for (int i = 0; i + P < Tk - 1; ++i)
            for (int c = 0; c < C; ++c) EXPECT_EQ(ctx2.v[(0 * Tq + i) * C + c], ctx.v[(0 * Tq + i) * C + c]) << "i=" << i;
        Buf dq({B, Tq, C}), dk({B, Tk, C}), dv({B, Tk, C});
        be->attention_backward(dq.t(), dk.t(), dv.t(), g.t(), q.t(), k.t(), v.t(), probs.t(), NH, p, key, 0);
        EXPECT_LT(check_grad(q.v, dq.v, loss).rel(), kTol) << "p=" << p;
        EXPECT_LT(check_grad(k.v, dk.v, loss).rel(), kTol) << "p=" << p;
        EXPECT_LT(check_grad(v.v, dv.v, loss).rel(), kTol) << "p=" << p;
    }
}

TEST_F(OpsGrad, FirstToken) {
    Buf x = randn({2, 3, 4}, 21), g = randn({2, 4}, 22);
    auto loss = [&] {
        Buf out({2, 4});
        be->first_token_forward(out.t(), x.t());
        return dot(out.v, g.v);
    };
    Buf dx({2, 3, 4}, 5.0);
    be->first_token_backward(dx.t(), g.t(), false);
    EXPECT_LT(check_grad(x.v, dx.v, loss).rel(), kTol);
}

// MEFT_CPU_GEMM's values, and oneDNN's float32 GEMMs (where the build has them) equal OpenBLAS's
// to float32 rounding, every transpose case of the engine's linear layers.
TEST(CpuGemm, LibrariesAgreeAndNamesParse) {
    EXPECT_EQ(parse_cpu_gemm("openblas"), CpuGemm::OpenBlas);
    EXPECT_THROW(parse_cpu_gemm("mkl"), Error);
    (void)make_cpu_backend();  // the first backend reads MEFT_CPU_GEMM
    if (const char* chosen = std::getenv("MEFT_CPU_GEMM"); chosen && *chosen)
        EXPECT_EQ(cpu_gemm(), parse_cpu_gemm(chosen));
    else  // the default: oneDNN where the build has it
        EXPECT_EQ(cpu_gemm(), cpu_gemm_available(CpuGemm::OneDnn) ? CpuGemm::OneDnn : CpuGemm::OpenBlas);
    if (!cpu_gemm_available(CpuGemm::OneDnn)) {
        EXPECT_THROW(parse_cpu_gemm("onednn"), Error);
        GTEST_SKIP() << "this build has no oneDNN (libdnnl-dev)";
    }
    auto be = make_cpu_backend();
    const int N = 37, C = 70, OC = 45;
    std::vector<float> x(N * C), w(OC * C), b(OC), g(N * OC);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    for (auto* v : {&x, &w, &b, &g})
        for (float& e : *v) e = nd(rng);
    auto run = [&](CpuGemm lib) {
        set_cpu_gemm(lib);
        std::vector<float> out(N * OC), dx(N * C), dw(OC * C, 0.f), db(OC, 0.f);
        auto t = [](std::vector<float>& v, Shape s) { return Tensor{DType::F32, s, v.data()}; };
        be->linear_forward(t(out, {N, OC}), t(x, {N, C}), t(w, {OC, C}), t(b, {OC}));
        be->linear_backward(t(dx, {N, C}), t(dw, {OC, C}), t(db, {OC}), t(g, {N, OC}), t(x, {N, C}), t(w, {OC, C}), false);
        out.insert(out.end(), dx.begin(), dx.end());
        out.insert(out.end(), dw.begin(), dw.end());
        return out;
    };
    const CpuGemm before = cpu_gemm();
    const std::vector<float> ref = run(CpuGemm::OpenBlas), got = run(CpuGemm::OneDnn);
    set_cpu_gemm(before);
    EXPECT_NE(got, std::vector<float>(got.size(), 0.f));
    for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-4 * (1 + std::abs(ref[i]))) << i;
}

TEST_F(OpsGrad, CopyColumns) {
    Buf src = randn({3, 7}, 31);
    Buf dst({3, 4}, 9.0);
    be->copy_columns(dst.t(), src.t(), 2);
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c) EXPECT_EQ(dst.v[r * 4 + c], src.v[r * 7 + 2 + c]);
    EXPECT_THROW(be->copy_columns(dst.t(), src.t(), 4), Error);  // columns 4..8 of a 7-column matrix
}

// DoRA's weight normalisation: g = m / ||w_r||; the gradient of <g, dg> by m and by w (the full
// one), and the detached form (dw empty) still giving m's.
TEST_F(OpsGrad, WeightNorm) {
    const int R = 4, C = 5;
    Buf w = randn({R, C}, 32), m = randn({R}, 33), dg = randn({R}, 34);
    auto loss = [&] {
        Buf g({R}), n({R});
        be->weight_norm_forward(g.t(), n.t(), m.t(), w.t());
        return dot(g.v, dg.v);
    };
    Buf g({R}), n({R});
    be->weight_norm_forward(g.t(), n.t(), m.t(), w.t());
    for (int r = 0; r < R; ++r) {
        double ss = 0;
        for (int c = 0; c < C; ++c) ss += w.v[r * C + c] * w.v[r * C + c];
        EXPECT_NEAR(n.v[r], std::sqrt(ss), 1e-14);
        EXPECT_NEAR(g.v[r], m.v[r] / std::sqrt(ss), 1e-14);
    }
    Buf dm({R}, 0.5), dw({R, C}, 7.0);
    be->weight_norm_backward(dm.t(), dw.t(), dg.t(), m.t(), w.t(), n.t());
    for (double& v : dm.v) v -= 0.5;  // dm accumulates; dw is assigned
    EXPECT_LT(check_grad(m.v, dm.v, loss).rel(), kTol);
    EXPECT_LT(check_grad(w.v, dw.v, loss).rel(), kTol);
    Buf dm2({R});
    be->weight_norm_backward(dm2.t(), Tensor{}, dg.t(), m.t(), w.t(), n.t());
    for (int r = 0; r < R; ++r) EXPECT_NEAR(dm2.v[r], dm.v[r], 1e-14);
}

TEST_F(OpsGrad, CrossEntropyAndMse) {
    const int B = 4, K = 3;
    std::vector<std::int32_t> labels = {0, 2, 1, 2};
    Tensor tl{DType::I32, {B}, labels.data()};
    Buf z = randn({B, K}, 23);
    const double scale = 0.25;
    auto ce = [&] {
        Buf l({B}), pr({B, K});
        be->cross_entropy_forward(l.t(), pr.t(), z.t(), tl);
        return scale * (l.v[0] + l.v[1] + l.v[2] + l.v[3]);
    };
    Buf l({B}), pr({B, K}), dz({B, K});
    be->cross_entropy_forward(l.t(), pr.t(), z.t(), tl);
    be->cross_entropy_backward(dz.t(), pr.t(), tl, scale);
    EXPECT_LT(check_grad(z.v, dz.v, ce).rel(), kTol);
    // a known value: uniform logits give log(K)
    Buf zero({1, K}), l1({1}), p1({1, K});
    be->cross_entropy_forward(l1.t(), p1.t(), zero.t(), Tensor{DType::I32, {1}, labels.data()});
    EXPECT_NEAR(l1.v[0], std::log(3.0), 1e-15);
    // A negative label (Hugging Face's -100) ignores its row: loss 0, gradient 0, others unchanged.
    std::vector<std::int32_t> ignored = {0, -100, 1, -100};
    Tensor ti{DType::I32, {B}, ignored.data()};
    auto ce_ignored = [&] {
        Buf li({B}), pi({B, K});
        be->cross_entropy_forward(li.t(), pi.t(), z.t(), ti);
        return scale * (li.v[0] + li.v[1] + li.v[2] + li.v[3]);
    };
    Buf li({B}), pi({B, K}), dzi({B, K});
    be->cross_entropy_forward(li.t(), pi.t(), z.t(), ti);
    be->cross_entropy_backward(dzi.t(), pi.t(), ti, scale);
    EXPECT_EQ(li.v[1], 0.0);
    EXPECT_EQ(li.v[3], 0.0);
    EXPECT_EQ(li.v[0], l.v[0]);
    for (int j = 0; j < K; ++j) EXPECT_EQ(dzi.v[1 * K + j], 0.0);
    EXPECT_LT(check_grad(z.v, dzi.v, ce_ignored).rel(), kTol);

    Buf y = randn({B, 1}, 24), t = randn({B}, 25);
    auto mse = [&] {
        Buf ll({B});
        be->mse_forward(ll.t(), y.t(), t.t());
        return scale * (ll.v[0] + ll.v[1] + ll.v[2] + ll.v[3]);
    };
    Buf dy({B, 1});
    be->mse_backward(dy.t(), y.t(), t.t(), scale);
    EXPECT_LT(check_grad(y.v, dy.v, mse).rel(), kTol);
}

// The float32 kernels compute the same function as the float64 ones.
TEST_F(OpsGrad, Float32MatchesFloat64) {
    const int N = 6, C = 8, OC = 5;
    Buf x = randn({N, C}, 31), w = randn({OC, C}, 32), b = randn({OC}, 33), lw = randn({OC}, 34), lb = randn({OC}, 35);
    auto f32 = [](const Buf& s) { return std::vector<float>(s.v.begin(), s.v.end()); };
    std::vector<float> x32 = f32(x), w32 = f32(w), b32 = f32(b), lw32 = f32(lw), lb32 = f32(lb), o32(N * OC), n32(N * OC),
                       m32(N), r32(N), gl32(N * OC);
    Buf o({N, OC}), n({N, OC}), m({N}), r({N}), gl({N, OC});
    be->linear_forward(o.t(), x.t(), w.t(), b.t());
    be->layernorm_forward(n.t(), m.t(), r.t(), o.t(), lw.t(), lb.t(), 1e-12);
    be->gelu_forward(gl.t(), n.t());
    auto T32 = [](std::vector<float>& v, Shape s) { return Tensor{DType::F32, s, v.data()}; };
    be->linear_forward(T32(o32, {N, OC}), T32(x32, {N, C}), T32(w32, {OC, C}), T32(b32, {OC}));
    be->layernorm_forward(T32(n32, {N, OC}), T32(m32, {N}), T32(r32, {N}), T32(o32, {N, OC}), T32(lw32, {OC}), T32(lb32, {OC}), 1e-12);
    be->gelu_forward(T32(gl32, {N, OC}), T32(n32, {N, OC}));
    for (int i = 0; i < N * OC; ++i) EXPECT_NEAR(gl32[i], gl.v[i], 2e-5 * (1 + std::abs(gl.v[i])));
}

}  // namespace
