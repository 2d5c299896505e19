// Tiled attention (Backend::attention_tiled_*): the same function as the standard attention
// without the [Tq, Tk] probabilities. For tiles from 1 x 1 (every entry its own tile) to larger
// than the sequence, with a padding mask, a fully padded example, causal masking with prefix keys,
// and dropout: float64 finite differences of the tiled backward; tiled forward and backward equal
// the standard ones to float64 rounding (dropout drops the same entries); float32 to float32
// rounding; gradients assign; padded keys get none. The contract names a bad lse; the shape-only
// backend plans the CPU's tile workspace and the CUDA kernels' scratch.
#include <gtest/gtest.h>

#include <cmath>

#include "core/cpu_backend.h"
#include "core/error.h"
#include "core/shape_backend.h"
#include "gradcheck.h"

using namespace meft;
using meft::test::Buf;
using meft::test::check_grad;
using meft::test::dot;
using meft::test::randn;

namespace {

struct Case {
    const char* name;
    int B, Tq, Tk, NH, C;
    bool causal;
    double p;
    std::vector<std::int32_t> mask;  // B x Tk
};

std::vector<Case> cases() {
    return {
        {"padding", 2, 7, 7, 2, 6, false, 0.0, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}},
        {"dropout", 2, 7, 7, 2, 6, false, 0.3, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}},
        {"causal with 2 prefix keys", 2, 6, 8, 2, 4, true, 0.0, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}},
        {"causal, prefix and dropout", 1, 6, 8, 2, 4, true, 0.25, {1, 1, 1, 1, 1, 1, 1, 1}},
        {"an example with every key padding", 2, 5, 5, 1, 4, false, 0.0, {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}},
    };
}

const std::vector<AttentionTiles> kTiles = {{1, 1}, {2, 3}, {4, 4}, {64, 128}};

class TiledAttention : public ::testing::Test {
protected:
    void TearDown() override { set_cpu_attention_tiles(AttentionTiles{}); }
    std::unique_ptr<Backend> be = make_cpu_backend();
};

TEST_F(TiledAttention, EqualsStandardAttentionAndPassesFiniteDifferences) {
    const PhiloxKey key = philox_key(7, 2, dropout_site(1, 0));
    for (const AttentionTiles tiles : kTiles)
        for (Case c : cases()) {
            SCOPED_TRACE(std::string(c.name) + ", tiles " + std::to_string(tiles.q) + " x " + std::to_string(tiles.k));
            set_cpu_attention_tiles(tiles);
            Tensor tm{DType::I32, {c.B, c.Tk}, c.mask.data()};
            Buf q = randn({c.B, c.Tq, c.C}, 11), k = randn({c.B, c.Tk, c.C}, 12), v = randn({c.B, c.Tk, c.C}, 13),
                g = randn({c.B, c.Tq, c.C}, 14);
            Buf ctx({c.B, c.Tq, c.C}), probs({c.B, c.NH, c.Tq, c.Tk}), tctx({c.B, c.Tq, c.C}), lse({c.B, c.NH, c.Tq});
            be->attention_forward(ctx.t(), probs.t(), q.t(), k.t(), v.t(), tm, c.NH, c.p, key, 3, c.causal);
            be->attention_tiled_forward(tctx.t(), lse.t(), q.t(), k.t(), v.t(), tm, c.NH, c.p, key, 3, c.causal);
            for (std::size_t i = 0; i < ctx.v.size(); ++i) ASSERT_NEAR(tctx.v[i], ctx.v[i], 1e-13 * (1 + std::abs(ctx.v[i])));

            Buf dq({c.B, c.Tq, c.C}), dk({c.B, c.Tk, c.C}), dv({c.B, c.Tk, c.C});
            be->attention_backward(dq.t(), dk.t(), dv.t(), g.t(), q.t(), k.t(), v.t(), probs.t(), c.NH, c.p, key, 3);
            Buf tdq({c.B, c.Tq, c.C}, 5.0), tdk({c.B, c.Tk, c.C}, 5.0), tdv({c.B, c.Tk, c.C}, 5.0);  // assigned, not added to
            be->attention_tiled_backward(tdq.t(), tdk.t(), tdv.t(), g.t(), q.t(), k.t(), v.t(), tm, tctx.t(), lse.t(), c.NH,
                                         c.p, key, 3, c.causal);
            for (std::size_t i = 0; i < dq.v.size(); ++i) ASSERT_NEAR(tdq.v[i], dq.v[i], 1e-12 * (1 + std::abs(dq.v[i])));
            for (std::size_t i = 0; i < dk.v.size(); ++i) ASSERT_NEAR(tdk.v[i], dk.v[i], 1e-12 * (1 + std::abs(dk.v[i])));
            for (std::size_t i = 0; i < dv.v.size(); ++i) ASSERT_NEAR(tdv.v[i], dv.v[i], 1e-12 * (1 + std::abs(dv.v[i])));
            // padded keys receive no gradient
            for (int b = 0; b < c.B; ++b)
                for (int j = 0; j < c.Tk; ++j)
                    if (!c.mask[std::size_t(b * c.Tk + j)])
                        for (int x = 0; x < c.C; ++x) {
                            EXPECT_EQ(tdk.v[std::size_t((b * c.Tk + j) * c.C + x)], 0.0);
                            EXPECT_EQ(tdv.v[std::size_t((b * c.Tk + j) * c.C + x)], 0.0);
                        }
            auto loss = [&] {
                Buf o({c.B, c.Tq, c.C}), l({c.B, c.NH, c.Tq});
                be->attention_tiled_forward(o.t(), l.t(), q.t(), k.t(), v.t(), tm, c.NH, c.p, key, 3, c.causal);
                return dot(o.v, g.v);
            };
            EXPECT_LT(check_grad(q.v, tdq.v, loss).rel(), 1e-6);
            EXPECT_LT(check_grad(k.v, tdk.v, loss).rel(), 1e-6);
            EXPECT_LT(check_grad(v.v, tdv.v, loss).rel(), 1e-6);
        }
}

TEST_F(TiledAttention, AFullyPaddedExampleGivesZerosAndAnInfiniteLogSumExp) {
    Case c = cases()[4];
    Tensor tm{DType::I32, {c.B, c.Tk}, c.mask.data()};
    Buf q = randn({c.B, c.Tq, c.C}, 1), k = randn({c.B, c.Tk, c.C}, 2), v = randn({c.B, c.Tk, c.C}, 3);
    Buf ctx({c.B, c.Tq, c.C}, 9.0), lse({c.B, c.NH, c.Tq});
    be->attention_tiled_forward(ctx.t(), lse.t(), q.t(), k.t(), v.t(), tm, c.NH, 0.0, PhiloxKey{}, 0, false);
    for (int i = 0; i < c.Tq * c.C; ++i) EXPECT_EQ(ctx.v[std::size_t(c.Tq * c.C + i)], 0.0);
    for (int i = 0; i < c.Tq; ++i) {
        EXPECT_TRUE(std::isinf(lse.v[std::size_t(c.Tq + i)]));
        EXPECT_TRUE(std::isfinite(lse.v[std::size_t(i)]));
    }
}

TEST_F(TiledAttention, Float32AgreesWithTheStandardAttention) {
    set_cpu_attention_tiles({3, 5});
    const int B = 2, T = 33, NH = 4, C = 32;
    std::vector<std::int32_t> mask(B * T, 1);
    for (int j = 25; j < T; ++j) mask[std::size_t(T + j)] = 0;
    Tensor tm{DType::I32, {B, T}, mask.data()};
    const PhiloxKey key = philox_key(5, 9, dropout_site(0, 0));
    auto f32 = [](const Buf& s) { return std::vector<float>(s.v.begin(), s.v.end()); };
    std::vector<float> q = f32(randn({B, T, C}, 21)), k = f32(randn({B, T, C}, 22)), v = f32(randn({B, T, C}, 23)),
                       g = f32(randn({B, T, C}, 24));
    auto T32 = [](std::vector<float>& x, Shape s) { return Tensor{DType::F32, s, x.data()}; };
    for (const bool causal : {false, true}) {
        std::vector<float> ctx(B * T * C), probs(B * NH * T * T), tctx(B * T * C), lse(B * NH * T), dq(q.size()), dk(q.size()),
            dv(q.size()), tdq(q.size()), tdk(q.size()), tdv(q.size());
        be->attention_forward(T32(ctx, {B, T, C}), T32(probs, {B, NH, T, T}), T32(q, {B, T, C}), T32(k, {B, T, C}),
                              T32(v, {B, T, C}), tm, NH, 0.1, key, 0, causal);
        be->attention_tiled_forward(T32(tctx, {B, T, C}), T32(lse, {B, NH, T}), T32(q, {B, T, C}), T32(k, {B, T, C}),
                                    T32(v, {B, T, C}), tm, NH, 0.1, key, 0, causal);
        be->attention_backward(T32(dq, {B, T, C}), T32(dk, {B, T, C}), T32(dv, {B, T, C}), T32(g, {B, T, C}), T32(q, {B, T, C}),
                               T32(k, {B, T, C}), T32(v, {B, T, C}), T32(probs, {B, NH, T, T}), NH, 0.1, key, 0);
        be->attention_tiled_backward(T32(tdq, {B, T, C}), T32(tdk, {B, T, C}), T32(tdv, {B, T, C}), T32(g, {B, T, C}),
                                     T32(q, {B, T, C}), T32(k, {B, T, C}), T32(v, {B, T, C}), tm, T32(tctx, {B, T, C}),
                                     T32(lse, {B, NH, T}), NH, 0.1, key, 0, causal);
        for (std::size_t i = 0; i < ctx.size(); ++i) ASSERT_NEAR(tctx[i], ctx[i], 2e-5 * (1 + std::abs(ctx[i]))) << i;
        for (std::size_t i = 0; i < dq.size(); ++i) {
            ASSERT_NEAR(tdq[i], dq[i], 5e-5 * (1 + std::abs(dq[i]))) << i;
            ASSERT_NEAR(tdk[i], dk[i], 5e-5 * (1 + std::abs(dk[i]))) << i;
            ASSERT_NEAR(tdv[i], dv[i], 5e-5 * (1 + std::abs(dv[i]))) << i;
        }
    }
}

TEST_F(TiledAttention, TheContractNamesABadLogSumExp) {
    const int B = 1, T = 4, NH = 2, C = 4;
    std::vector<std::int32_t> mask(T, 1);
    Tensor tm{DType::I32, {B, T}, mask.data()};
    Buf q = randn({B, T, C}, 1), ctx({B, T, C}), wrong({B, NH, T + 1});
    try {
        be->attention_tiled_forward(ctx.t(), wrong.t(), q.t(), q.t(), q.t(), tm, NH, 0.0, PhiloxKey{}, 0, false);
        FAIL() << "a wrong lse shape was accepted";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("attention_tiled_forward"), std::string::npos) << msg;
        EXPECT_NE(msg.find("lse"), std::string::npos) << msg;
    }
    std::vector<float> lse32(B * NH * T);
    try {  // float64 inputs keep a float64 log-sum-exp
        be->attention_tiled_forward(ctx.t(), Tensor{DType::F32, {B, NH, T}, lse32.data()}, q.t(), q.t(), q.t(), tm, NH, 0.0,
                                    PhiloxKey{}, 0, false);
        FAIL() << "a float32 lse for float64 inputs was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("lse"), std::string::npos) << e.what();
    }
}

TEST_F(TiledAttention, TheShapeOnlyBackendPlansTheTileWorkspace) {
    set_cpu_attention_tiles({16, 32});
    WorkspaceRule rule = WorkspaceRule::cpu();
    rule.threads = 3;
    auto plan = make_shape_backend(rule);
    const int B = 2, T = 512, NH = 4, C = 64;
    std::vector<std::int32_t> mask(B * T, 1);
    Tensor tm{DType::I32, {B, T}, mask.data()};
    Tensor q{DType::F32, {B, T, C}, reinterpret_cast<void*>(std::uintptr_t(64))}, lse{DType::F32, {B, NH, T}, q.data};
    plan->attention_tiled_forward(q, lse, q, q, q, tm, NH, 0.0, PhiloxKey{}, 0, false);
    EXPECT_EQ(plan->op_workspace_bytes(), 3 * cpu_tiled_attention_workspace(C / NH, false) * sizeof(float));
    plan->attention_tiled_backward(q, q, q, q, q, q, q, tm, q, lse, NH, 0.0, PhiloxKey{}, 0, false);
    EXPECT_EQ(plan->op_workspace_bytes(), 3 * cpu_tiled_attention_workspace(C / NH, true) * sizeof(float));
    // Far below the standard attention's threads x 2 x T x T.
    EXPECT_LT(plan->op_workspace_bytes(), std::size_t(3) * 2 * T * T * sizeof(float) / 50);
}

// Planning for CUDA: the kernels keep their tiles in shared memory, so forward takes no scratch
// and backward only the rows' <dctx, ctx> (B x NH x T, in a scratch buffer of whole MiB); head
// sizes past the kernels' 128 are refused as the kernels refuse them.
TEST_F(TiledAttention, TheShapeOnlyBackendPlansTheCudaKernelsScratch) {
    auto plan = make_shape_backend(WorkspaceRule::cuda_device());
    const int B = 64, T = 4096, NH = 4, C = 256;  // rows' sums: 64 x 4 x 4096 floats = 4 MiB
    std::vector<std::int32_t> mask(B * T, 1);
    Tensor tm{DType::I32, {B, T}, mask.data()};
    Tensor q{DType::F32, {B, T, C}, reinterpret_cast<void*>(std::uintptr_t(64))}, lse{DType::F32, {B, NH, T}, q.data};
    plan->attention_tiled_forward(q, lse, q, q, q, tm, NH, 0.1, PhiloxKey{}, 0, true);
    EXPECT_EQ(plan->op_workspace_bytes(), 0u);
    plan->attention_tiled_backward(q, q, q, q, q, q, q, tm, q, lse, NH, 0.1, PhiloxKey{}, 0, true);
    EXPECT_EQ(plan->op_workspace_bytes(), std::size_t(B) * NH * T * sizeof(float));
    try {
        const Tensor lse1{DType::F32, {B, 1, T}, q.data};
        plan->attention_tiled_forward(q, lse1, q, q, q, tm, 1, 0.0, PhiloxKey{}, 0, false);  // one head of 256
        FAIL() << "a head size of 256 was planned";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("head sizes 1 to 128, not 256"), std::string::npos) << e.what();
    }
}

}  // namespace
