// meft-gemm-bench: what this machine's cores can do for the engine's GEMMs, measured.
//
//   1. The FMA peak of one core: a loop of independent fused multiply-adds on 256-bit (AVX2) and,
//      where the CPU has them, 512-bit (AVX-512F) registers, in float32 GFLOP/s — the ceiling no
//      library can pass.
//   2. Each library's single-precision GEMM on the engine's real shapes (BERT-base's linear layers
//      forward and backward at batch × seq tokens, and one attention head's score and context
//      products), on one thread and on all of them, in GFLOP/s and as a share of the FMA peak:
//      OpenBLAS (cblas_sgemm, as the CPU backend calls it) and, when the build found it, oneDNN
//      (dnnl_sgemm).
//   3. The GEMM work of one BERT-base full fine-tuning step at that size (GFLOP, from the shapes),
//      and the time it takes at each library's rate and at the FMA peak: the floor of a step's time.
//
//   meft-gemm-bench [--tokens 1024] [--seq 128] [--repeats 7]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <cblas.h>
#include <immintrin.h>

#include <CLI/CLI.hpp>

// OpenBLAS extensions (declared here: netlib's cblas.h, which the include path may find first, lacks them).
extern "C" void openblas_set_num_threads(int num_threads);
extern "C" char* openblas_get_config(void);

#if defined(MEFT_HAVE_ONEDNN)
#include <dnnl.h>
#include <omp.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// ---- 1. the FMA peak of one core ---------------------------------------------------------------

// 12 independent accumulators hide the FMA latency on every x86 core we know of.
constexpr long kFmaIterations = 20'000'000;

__attribute__((target("avx2,fma"))) double fma_gflops_256() {
    __m256 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i) * 1e-3f);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    const auto t = Clock::now();
    for (long n = 0; n < kFmaIterations; ++n)
        for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    const double s = seconds_since(t);
    float sink = 0;
    for (int i = 0; i < 12; ++i) sink += _mm256_cvtss_f32(acc[i]);
    if (sink == 12345.f) std::printf(" ");  // keep the loop
    return double(kFmaIterations) * 12 * 8 * 2 / s / 1e9;
}

__attribute__((target("avx512f"))) double fma_gflops_512() {
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    const auto t = Clock::now();
    for (long n = 0; n < kFmaIterations; ++n)
        for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    const double s = seconds_since(t);
    float sink = 0;
    for (int i = 0; i < 12; ++i) {
        float lanes[16];
        _mm512_storeu_ps(lanes, acc[i]);
        sink += lanes[0];
    }
    if (sink == 12345.f) std::printf(" ");
    return double(kFmaIterations) * 12 * 16 * 2 / s / 1e9;
}

// ---- 2. GEMMs ----------------------------------------------------------------------------------

struct Shape {
    const char* what;
    bool ta, tb;
    int M, N, K;
    double flops() const { return 2.0 * M * N * K; }
};

enum class Library { OpenBlas, OneDnn };
const char* name(Library l) { return l == Library::OpenBlas ? "OpenBLAS" : "oneDNN"; }

// Row-major C[M,N] = op(A) op(B), as the CPU backend's gemm().
void sgemm(Library lib, const Shape& s, const float* A, const float* B, float* C) {
    const int lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    if (lib == Library::OpenBlas) {
        cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.M, s.N, s.K,
                    1.0f, A, lda, B, ldb, 0.0f, C, s.N);
        return;
    }
#if defined(MEFT_HAVE_ONEDNN)
    dnnl_sgemm(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.M, s.N, s.K, 1.0f, A, lda, B, ldb, 0.0f, C, s.N);
#endif
}

void set_threads(Library lib, int n) {
    if (lib == Library::OpenBlas) openblas_set_num_threads(n);
#if defined(MEFT_HAVE_ONEDNN)
    else omp_set_num_threads(n);
#endif
}

// Median GFLOP/s over `repeats` timings of enough calls to take ~50 ms each.
double gflops(Library lib, const Shape& s, int threads, int repeats) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    std::vector<float> A(std::size_t(s.M) * s.K), B(std::size_t(s.K) * s.N), C(std::size_t(s.M) * s.N);
    for (float& x : A) x = nd(rng);
    for (float& x : B) x = nd(rng);
    set_threads(lib, threads);
    sgemm(lib, s, A.data(), B.data(), C.data());  // warm-up: the library's buffers, page faults
    const int calls = std::max(1, int(5e9 * threads / s.flops() / 100));
    std::vector<double> rate;
    for (int r = 0; r < repeats; ++r) {
        const auto t = Clock::now();
        for (int c = 0; c < calls; ++c) sgemm(lib, s, A.data(), B.data(), C.data());
        rate.push_back(s.flops() * calls / seconds_since(t) / 1e9);
    }
    return median(rate);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"meft-gemm-bench — the FMA peak, and each BLAS library's sgemm on the engine's shapes"};
    int tokens = 1024, seq = 128, repeats = 7;
    app.add_option("--tokens", tokens, "rows of the linear layers' GEMMs: batch x seq (BERT-base 8 x 128: 1024)")
        ->check(CLI::PositiveNumber);
    app.add_option("--seq", seq, "sequence length of one attention head's GEMMs")->check(CLI::PositiveNumber);
    app.add_option("--repeats", repeats, "timings per number (median)")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);

    const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<Library> libs = {Library::OpenBlas};
#if defined(MEFT_HAVE_ONEDNN)
    libs.push_back(Library::OneDnn);
#endif
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("<!-- meft-gemm-bench --tokens %d --seq %d --repeats %d; %d hardware threads; OPENBLAS_CORETYPE=%s;"
                " OpenBLAS config: %s -->\n\n",
                tokens, seq, repeats, threads, coretype ? coretype : "(unset)", openblas_get_config());

    // 1.
    const double peak256 = fma_gflops_256();
    const bool has512 = __builtin_cpu_supports("avx512f");
    const double peak512 = has512 ? fma_gflops_512() : 0;
    const double peak = std::max(peak256, peak512);
    std::printf("FMA peak of one core, float32: %.1f GFLOP/s with 256-bit FMAs", peak256);
    if (has512) std::printf(", %.1f GFLOP/s with 512-bit FMAs", peak512);
    std::printf(" (%d threads: %.1f GFLOP/s)\n\n", threads, peak * threads);

    // 2.
    const int C = 768, I = 3072, HS = 64, N = tokens;
    const std::vector<Shape> shapes = {
        {"linear forward, C -> C (q, k, v, attention output)", false, true, N, C, C},
        {"linear forward, C -> 4C (FFN in)", false, true, N, I, C},
        {"linear forward, 4C -> C (FFN out)", false, true, N, C, I},
        {"input gradient, FFN out (dY W)", false, false, N, I, C},
        {"weight gradient, FFN in (dY^T X)", true, false, I, C, N},
        {"attention scores, one head (Q K^T)", false, true, seq, seq, HS},
        {"attention context, one head (P V)", false, false, seq, HS, seq},
    };
    std::printf("| GEMM | M × N × K |");
    for (Library l : libs) std::printf(" %s 1 thread | %s %d threads |", name(l), name(l), threads);
    std::printf("\n|---|---|");
    for (std::size_t i = 0; i < libs.size(); ++i) std::printf("---|---|");
    std::printf("\n");
    std::vector<std::vector<double>> linear_one(libs.size());  // 1-thread rates on the linear layers' shapes
    for (const Shape& s : shapes) {
        std::printf("| %s | %d × %d × %d |", s.what, s.M, s.N, s.K);
        for (std::size_t i = 0; i < libs.size(); ++i) {
            const double one = gflops(libs[i], s, 1, repeats), all = gflops(libs[i], s, threads, repeats);
            std::printf(" %.1f (%.0f%%) | %.1f (%.0f%%) |", one, 100 * one / peak, all, 100 * all / (peak * threads));
            if (s.M == N || s.K == N) linear_one[i].push_back(one);
        }
        std::printf("\n");
    }
    std::printf("\nGFLOP/s, and in brackets the share of the FMA peak of the threads used.\n\n");

    // 3. BERT-base full fine-tuning, one step at N tokens: every linear layer's forward, input
    // gradient and weight gradient (3 GEMMs of 2·N·in·out), attention's 2 forward and 4 backward
    // products per head, the MLM-free classifier and pooler being negligible.
    const double L = 12, B = double(N) / seq, NH = 12;
    const double linear = 3 * L * 2.0 * N * (4.0 * C * C + 2.0 * C * I);
    const double attention = 6 * L * B * NH * 2.0 * seq * seq * HS;
    const double total = linear + attention;
    std::printf("One BERT-base full fine-tuning step at %d tokens (%g × %d): %.1f GFLOP of GEMMs (linear %.1f, "
                "attention %.1f)\n",
                N, B, seq, total / 1e9, linear / 1e9, attention / 1e9);
    // The CPU backend runs single-threaded GEMMs side by side, one per pool thread: its rate is
    // the one-thread rate times the threads (what the shared machine's second core really gives
    // shows in the all-thread columns above).
    for (std::size_t i = 0; i < libs.size(); ++i) {
        const double rate = median(linear_one[i]) * threads;
        std::printf("  at %s's median one-thread rate on the linear shapes x %d threads (%.1f GFLOP/s): %.2f s of "
                    "GEMMs per step\n",
                    name(libs[i]), threads, rate, total / (rate * 1e9));
    }
    std::printf("  at the FMA peak of %d cores (%.1f GFLOP/s): %.2f s\n", threads, peak * threads,
                total / (peak * threads * 1e9));
    return 0;
}
