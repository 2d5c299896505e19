// meft-attention-bench: the attention core of one layer on the CPU backend, standard (holds the
// [B, heads, T, T] probabilities) vs tiled (online softmax over query x key tiles, recomputed in
// backward): median forward and forward+backward times, and the bytes each keeps for backward
// plus its per-thread workspace. BERT-base's shapes by default (12 heads of 64).
//
//   meft-attention-bench [--batch 8] [--seq 128,512] [--heads 12] [--head-size 64] [--dropout 0.1]
//                        [--repeats 7] [--tiles 64x128,...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/cpu_backend.h"
#include "core/error.h"

using namespace meft;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <typename F> double time_ms(F&& f, int repeats) {
    f();  // warm-up: workspaces grow, pages fault in
    std::vector<double> t;
    for (int r = 0; r < repeats; ++r) {
        const auto a = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    }
    return median(t);
}

std::vector<int> int_list(const std::string& s) {
    std::vector<int> out;
    std::stringstream in(s);
    for (std::string x; std::getline(in, x, ',');) out.push_back(std::stoi(x));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"meft-attention-bench — standard vs tiled attention on the CPU backend"};
    int B = 8, NH = 12, HS = 64, repeats = 7;
    double p = 0.1;
    std::string seqs = "128,512", tiles = "64x128";
    app.add_option("--batch", B, "examples")->check(CLI::PositiveNumber);
    app.add_option("--seq", seqs, "sequence lengths, comma-separated");
    app.add_option("--heads", NH, "attention heads")->check(CLI::PositiveNumber);
    app.add_option("--head-size", HS, "head size")->check(CLI::PositiveNumber);
    app.add_option("--dropout", p, "attention dropout")->check(CLI::Range(0.0, 0.9));
    app.add_option("--repeats", repeats, "timed repeats (median)")->check(CLI::PositiveNumber);
    app.add_option("--tiles", tiles, "tiled attention's query x key tiles to try, e.g. 64x128,32x256");
    CLI11_PARSE(app, argc, argv);
    try {
        std::vector<AttentionTiles> tile_list;
        std::stringstream in(tiles);
        for (std::string t; std::getline(in, t, ',');) {
            const std::size_t x = t.find('x');
            if (x == std::string::npos) throw Error("--tiles " + t + ": expected QxK, e.g. 64x128");
            tile_list.push_back({std::stoi(t.substr(0, x)), std::stoi(t.substr(x + 1))});
        }
        auto be = make_cpu_backend();
        const int C = NH * HS;
        const PhiloxKey key = philox_key(1, 1, dropout_site(0, 0));
        std::printf("| batch × seq | attention | forward (ms) | forward + backward (ms) | kept for backward | workspace / thread |\n"
                    "|---|---|---|---|---|---|\n");
        for (const int T : int_list(seqs)) {
            std::mt19937 rng(7);
            std::normal_distribution<float> n(0.f, 1.f);
            const std::size_t act = std::size_t(B) * T * C;
            std::vector<float> q(act), k(act), v(act), g(act), ctx(act), dq(act), dk(act), dv(act);
            for (auto* x : {&q, &k, &v, &g})
                for (float& e : *x) e = n(rng);
            std::vector<std::int32_t> mask(std::size_t(B) * T, 1);
            auto t3 = [&](std::vector<float>& x) { return Tensor{DType::F32, {B, T, C}, x.data()}; };
            Tensor tm{DType::I32, {B, T}, mask.data()};
            const auto mib = [](std::size_t bytes) { return std::to_string(bytes / 1048576.0).substr(0, 5) + " MiB"; };
            {  // standard: the probabilities are kept
                std::vector<float> probs(std::size_t(B) * NH * T * T);
                Tensor P{DType::F32, {B, NH, T, T}, probs.data()};
                const double f = time_ms([&] { be->attention_forward(t3(ctx), P, t3(q), t3(k), t3(v), tm, NH, p, key, 0, false); }, repeats);
                const double fb = time_ms([&] {
                    be->attention_forward(t3(ctx), P, t3(q), t3(k), t3(v), tm, NH, p, key, 0, false);
                    be->attention_backward(t3(dq), t3(dk), t3(dv), t3(g), t3(q), t3(k), t3(v), P, NH, p, key, 0);
                }, repeats);
                std::printf("| %d × %d | standard | %.2f | %.2f | %s (probs) | %s |\n", B, T, f, fb, mib(probs.size() * 4).c_str(),
                            mib(std::size_t(2) * T * T * 4).c_str());
            }
            for (const AttentionTiles tl : tile_list) {  // tiled: one log-sum-exp per row (and ctx, kept anyway by most layers)
                set_cpu_attention_tiles(tl);
                std::vector<float> lse(std::size_t(B) * NH * T);
                Tensor L{DType::F32, {B, NH, T}, lse.data()};
                const double f = time_ms([&] { be->attention_tiled_forward(t3(ctx), L, t3(q), t3(k), t3(v), tm, NH, p, key, 0, false); }, repeats);
                const double fb = time_ms([&] {
                    be->attention_tiled_forward(t3(ctx), L, t3(q), t3(k), t3(v), tm, NH, p, key, 0, false);
                    be->attention_tiled_backward(t3(dq), t3(dk), t3(dv), t3(g), t3(q), t3(k), t3(v), tm, t3(ctx), L, NH, p, key, 0, false);
                }, repeats);
                std::printf("| %d × %d | tiled %d × %d | %.2f | %.2f | %s (lse) | %s |\n", B, T, tl.q, tl.k, f, fb,
                            mib(lse.size() * 4).c_str(),
                            mib(std::max(cpu_tiled_attention_workspace(HS, false), cpu_tiled_attention_workspace(HS, true)) * 4).c_str());
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
