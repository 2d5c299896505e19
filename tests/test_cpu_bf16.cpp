// The CPU backend's bf16 GEMMs (training.gemm_precision "bf16"): the rounding, the oneDNN
// matmul against a float64 reference of the rounded operands, the linear ops, determinism, the
// planned workspace, a model trained with them, and the refusal where the CPU lacks AVX512_BF16
// (the ctest entry test_cpu_bf16_refused hides the instructions with DNNL_MAX_CPU_ISA).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/backend_select.h"
#include "core/cpu_backend.h"
#include "core/cpu_bf16_gemm.h"
#include "core/dtype.h"
#include "core/error.h"
#include "model/sequence_classifier.h"
#include "peft/method.h"
#include "train/memory_plan.h"
#include "train/optimizer.h"

using namespace meft;

namespace {

bool hidden_by_environment() {
    const char* v = std::getenv("DNNL_MAX_CPU_ISA");
    return v && std::string(v) == "AVX512_CORE";
}

#define REQUIRE_BF16()                                                                                  \
    do {                                                                                                \
        std::string why;                                                                                \
        if (!cpu_bf16_gemm_available(&why)) GTEST_SKIP() << "no bf16 GEMMs on this machine: " << why; \
    } while (0)

ModelConfig small() {
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.vocab_size = 300;
    c.num_layers = 2;
    c.hidden_size = 48;
    c.num_heads = 4;
    c.intermediate_size = 96;
    c.set_num_labels(2);
    return c;
}

std::uint32_t bits(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}
float from_bits(std::uint32_t u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

std::vector<float> randn(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    return v;
}

// The planned workspace equals the measured one: the backend's one buffer of rounded operands
// is the largest operand pair of any linear GEMM. First in the file: the CPU's attention
// workspaces belong to the process's threads and only grow (test_memory.cpp).
TEST(CpuBf16, PlannedWorkspaceEqualsMeasured) {
    REQUIRE_BF16();
    auto be = make_cpu_backend(CpuBackendOptions{true});
    const ModelConfig cfg = small();
    for (const char* n : {"full", "lora"}) {
        const MethodConfig m = parse_method({{"name", n}}, "test");
        const MemoryPlanResult measured = measure_run_memory(*be, cfg, m, DType::F32, 4, 8, 32);
        const MemoryPlanResult planned = plan_run_memory(cfg, m, DType::F32, 4, 8, 32, WorkspaceRule::cpu(true));
        const MemoryPlanResult exact = plan_run_memory(cfg, m, DType::F32, 4, 8, 32, WorkspaceRule::cpu(false));
        EXPECT_EQ(measured.report.workspace, planned.report.workspace) << n;
        EXPECT_EQ(measured.report.reserved, planned.report.reserved) << n;
        // The largest pair: the evaluation batch's FFN output projection, input [8*32, 96] and weight [48, 96].
        EXPECT_EQ(planned.report.workspace - exact.report.workspace, std::size_t(8 * 32 * 96 + 48 * 96) * 2) << n;
    }
}

// round_to_bf16 is dtype.h's float_to_bf16 (nearest even, NaN quiet, denormals kept) element for
// element, at every array length the vector loop splits differently.
TEST(CpuBf16, RoundingToNearestEven) {
    EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(float_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // a tie: to the even neighbour below
    EXPECT_EQ(float_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // a tie: to the even neighbour above
    EXPECT_EQ(float_to_bf16(from_bits(0x3f808001u)), 0x3f81);  // above the tie
    EXPECT_EQ(float_to_bf16(from_bits(0x00018000u)), 0x0002);  // a denormal stays a denormal
    EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to +inf
    EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(from_bits(0x7f800001u)))));  // a NaN whose top half is inf

    std::vector<float> in = randn(1000, 1);
    const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                              std::numeric_limits<float>::quiet_NaN(), from_bits(0x7f800001u), from_bits(0x00018000u),
                              std::numeric_limits<float>::max(), from_bits(0x3f808000u), from_bits(0xbf818000u)};
    for (std::size_t i = 0; i < std::size(specials); ++i) in[i * 97] = specials[i];
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(15), std::size_t(16), std::size_t(17), std::size_t(63),
                          std::size_t(1000)}) {
        std::vector<std::uint16_t> out(n + 1, 0xabcd);
        round_to_bf16(out.data(), in.data(), n);
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], float_to_bf16(in[i])) << "n=" << n << " i=" << i;
        EXPECT_EQ(out[n], 0xabcd) << "wrote past the end, n=" << n;
    }
}

// C = alpha op(A) op(B) + beta C with bf16 operands, every transpose, leading dimensions wider
// than the matrices, beta 0 and 1, alpha != 1, and K = 0: against the float64 product of the
// rounded operands, to float32 accumulation.
TEST(CpuBf16, GemmMatchesTheRoundedOperandsProduct) {
    REQUIRE_BF16();
    const int M = 37, N = 29, K = 45, pad = 3;
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (float beta : {0.0f, 1.0f})
                for (float alpha : {1.0f, 0.5f})
                    for (int k : {K, 0}) {
                        const int lda = (ta ? M : k) + pad, ldb = (tb ? k : N) + pad, ldc = N + pad;
                        const std::vector<float> af = randn(std::size_t(ta ? k : M) * lda + 1, 2),
                                                 bf = randn(std::size_t(tb ? N : k) * ldb + 1, 3);
                        std::vector<std::uint16_t> a(af.size()), b(bf.size());
                        round_to_bf16(a.data(), af.data(), a.size());
                        round_to_bf16(b.data(), bf.data(), b.size());
                        std::vector<float> c = randn(std::size_t(M) * ldc, 4);
                        const std::vector<float> c0 = c;
                        bf16_gemm(ta, tb, M, N, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
                        const std::string what = std::string("ta=") + (ta ? "1" : "0") + " tb=" + (tb ? "1" : "0") +
                                                 " beta=" + std::to_string(beta) + " alpha=" + std::to_string(alpha) +
                                                 " K=" + std::to_string(k);
                        for (int i = 0; i < M; ++i)
                            for (int j = 0; j < ldc; ++j) {
                                const std::size_t at = std::size_t(i) * ldc + j;
                                if (j >= N) {  // the padding columns are not touched
                                    ASSERT_EQ(bits(c[at]), bits(c0[at])) << what;
                                    continue;
                                }
                                double ref = 0, mag = 0;
                                for (int p = 0; p < k; ++p) {
                                    const double x = bf16_to_float(ta ? a[std::size_t(p) * lda + i] : a[std::size_t(i) * lda + p]);
                                    const double y = bf16_to_float(tb ? b[std::size_t(j) * ldb + p] : b[std::size_t(p) * ldb + j]);
                                    ref += x * y;
                                    mag += std::abs(x * y);
                                }
                                ref = alpha * ref + beta * c0[at];
                                ASSERT_NEAR(c[at], ref, 1e-6 * (alpha * mag + std::abs(c0[at])) + 1e-30) << what << " at " << i << "," << j;
                            }
                    }
}

// Each thread keeps at most bf16_gemm_max_cached_shapes() matmuls made: more shapes than that
// (a new one per padded batch length) evict the least recently used, and a shape made again after
// its eviction gives the same bits as before.
TEST(CpuBf16, MadeMatmulsAreBoundedAndRemade) {
    REQUIRE_BF16();
    const int N = 24, K = 40, rows = int(bf16_gemm_max_cached_shapes()) + 40;
    const std::vector<float> af = randn(std::size_t(rows) * K, 5), bf = randn(std::size_t(K) * N, 6);
    std::vector<std::uint16_t> a(af.size()), b(bf.size());
    round_to_bf16(a.data(), af.data(), a.size());
    round_to_bf16(b.data(), bf.data(), b.size());
    auto product = [&](int M) {
        std::vector<float> c(std::size_t(M) * N);
        bf16_gemm(false, false, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.data(), N);
        return c;
    };
    const std::size_t before = bf16_gemm_cached_shapes();
    const std::vector<float> first = product(1);
    EXPECT_EQ(bf16_gemm_cached_shapes(), std::min(before + 1, bf16_gemm_max_cached_shapes()));
    for (int M = 2; M <= rows; ++M) (void)product(M);
    EXPECT_EQ(bf16_gemm_cached_shapes(), bf16_gemm_max_cached_shapes());
    const std::vector<float> again = product(1);  // evicted long ago: made again
    ASSERT_EQ(again.size(), first.size());
    for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(bits(again[i]), bits(first[i])) << i;
    EXPECT_EQ(bf16_gemm_cached_shapes(), bf16_gemm_max_cached_shapes());
    (void)product(rows);  // still made: no growth
    EXPECT_EQ(bf16_gemm_cached_shapes(), bf16_gemm_max_cached_shapes());
}

// The backend's linear ops with bf16 GEMMs: close to the exact float32 ones (bf16 keeps 8 bits),
// really rounded (not the exact result), exact where the operands are already bf16, and the
// same bits on a second run.
TEST(CpuBf16, LinearOpsRoundTheirOperands) {
    REQUIRE_BF16();
    auto exact = make_cpu_backend();
    auto bf = make_cpu_backend(CpuBackendOptions{true});
    const int N = 200, C = 96, OC = 160;  // large enough that the pool splits the GEMMs
    auto run = [&](Backend& be, const std::vector<float>& x, const std::vector<float>& w) {
        const std::vector<float> b = randn(OC, 12), g = randn(std::size_t(N) * OC, 13);
        std::vector<float> out(std::size_t(N) * OC), dx(std::size_t(N) * C), dw(std::size_t(OC) * C, 0.f), db(OC, 0.f);
        auto t = [](const std::vector<float>& v, Shape s) { return Tensor{DType::F32, s, const_cast<float*>(v.data())}; };
        be.linear_forward(t(out, {N, OC}), t(x, {N, C}), t(w, {OC, C}), t(b, {OC}));
        be.linear_backward(t(dx, {N, C}), t(dw, {OC, C}), t(db, {OC}), t(g, {N, OC}), t(x, {N, C}), t(w, {OC, C}), false);
        out.insert(out.end(), dx.begin(), dx.end());
        out.insert(out.end(), dw.begin(), dw.end());
        return out;
    };
    const std::vector<float> x = randn(std::size_t(N) * C, 10), w = randn(std::size_t(OC) * C, 11);
    const std::vector<float> ref = run(*exact, x, w), got = run(*bf, x, w);
    double err = 0, norm = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        err += (got[i] - ref[i]) * double(got[i] - ref[i]);
        norm += double(ref[i]) * ref[i];
    }
    std::printf("  linear forward+backward, bf16 operands vs exact float32: NMSE %.2e\n", err / norm);
    EXPECT_LT(err / norm, 1e-4);   // bf16's relative rounding is 2^-9 per operand
    EXPECT_GT(err / norm, 1e-9);   // and it did round
    EXPECT_EQ(run(*bf, x, w), got);  // deterministic, bit for bit

    // Operands already in bf16, gradients too: only the float32 accumulation order differs.
    std::vector<float> xr = x, wr = w;
    for (float& v : xr) v = bf16_to_float(float_to_bf16(v));
    for (float& v : wr) v = bf16_to_float(float_to_bf16(v));
    // dout is random float32 in run(): round it too by comparing the forward output only.
    const std::vector<float> ref_r = run(*exact, xr, wr), got_r = run(*bf, xr, wr);
    for (std::size_t i = 0; i < std::size_t(N) * OC; ++i)
        ASSERT_NEAR(got_r[i], ref_r[i], 1e-5 * (1 + std::abs(ref_r[i]))) << i;
    // float64 ignores the mode: it stays exact.
    std::vector<double> xd(std::size_t(N) * C, 0.1), wd(std::size_t(OC) * C, 0.3), od(std::size_t(N) * OC), od2(od.size());
    auto td = [](std::vector<double>& v, Shape s) { return Tensor{DType::F64, s, v.data()}; };
    bf->linear_forward(td(od, {N, OC}), td(xd, {N, C}), td(wd, {OC, C}), Tensor{});
    exact->linear_forward(td(od2, {N, OC}), td(xd, {N, C}), td(wd, {OC, C}), Tensor{});
    EXPECT_EQ(od, od2);
}

// A model trained with bf16 GEMMs follows the float32 one closely (loss), is not the same run,
// and two runs give the same bits.
TEST(CpuBf16, ModelTrainsCloseToFloat32) {
    REQUIRE_BF16();
    const ModelConfig cfg = small();
    auto train = [&](bool bf16) {
        auto be = make_cpu_backend(CpuBackendOptions{bf16});
        SequenceClassifier model(cfg, *be, DType::F32, parse_method({{"name", "full"}}, "t"));
        model.init_weights(5);
        AdamW opt(model.params(), AdamWConfig{});
        HostBatch batch;
        batch.B = 4;
        batch.T = 16;
        std::mt19937 rng(9);
        for (int i = 0; i < batch.B * batch.T; ++i) {
            batch.input_ids.push_back(std::int32_t(rng() % 300));
            batch.attention_mask.push_back(1);
            batch.token_type_ids.push_back(0);
        }
        for (int i = 0; i < batch.B; ++i) batch.labels.push_back(int(rng() % 2));
        std::vector<double> losses;
        for (int s = 0; s < 6; ++s) {
            model.params().zero_grads();
            losses.push_back(model.forward_backward(batch, ForwardOptions{true, 1, std::uint32_t(s)}, 1.0 / batch.B));
            opt.step(1e-3);
        }
        return losses;
    };
    const std::vector<double> f32 = train(false), b16 = train(true);
    for (std::size_t s = 0; s < f32.size(); ++s) {
        std::printf("  step %zu: loss float32 %.6f, bf16 GEMMs %.6f\n", s, f32[s], b16[s]);
        EXPECT_TRUE(std::isfinite(b16[s]));
        EXPECT_NEAR(b16[s], f32[s], 0.02 * std::abs(f32[s])) << s;
    }
    EXPECT_NE(b16, f32);
    EXPECT_LT(b16.back(), b16.front());  // it learns the batch
    EXPECT_EQ(train(true), b16);
}

// The experiment's choice reaches the CPU backend; without the instructions it is a clear error
// (test_cpu_bf16_refused runs this with DNNL_MAX_CPU_ISA=AVX512_CORE).
TEST(CpuBf16, BackendSelectionOrRefusal) {
    BackendOptions o;
    o.bf16_gemm = true;
    std::string why;
    const bool available = cpu_bf16_gemm_available(&why);
    if (hidden_by_environment()) {
        EXPECT_FALSE(available) << "DNNL_MAX_CPU_ISA=AVX512_CORE should hide AVX512_BF16";
    }
    if (available) {
        EXPECT_TRUE(why.empty());
        EXPECT_EQ(make_backend("cpu", o)->name(), "cpu");
        return;
    }
    EXPECT_NE(why.find("AVX512_BF16"), std::string::npos) << why;
    std::vector<std::string> names = {"cpu"};
    if (!cuda_backend_available()) names.push_back("auto");  // else auto takes the GPU
    for (const std::string& name : names) {
        std::string err;
        try {
            make_backend(name, o);
        } catch (const Error& e) {
            err = e.what();
        }
        EXPECT_NE(err.find("bf16 GEMMs (gemm precision \"bf16\")"), std::string::npos) << err;
        EXPECT_NE(err.find(why), std::string::npos) << err;
        EXPECT_NE(err.find("use gemm precision \"float32\""), std::string::npos) << err;
    }
    EXPECT_THROW(make_cpu_backend(CpuBackendOptions{true}), Error);
    EXPECT_EQ(make_backend("cpu")->name(), "cpu");  // float32 is unaffected
}

}  // namespace
