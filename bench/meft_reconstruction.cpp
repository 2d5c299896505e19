// meft-reconstruction — how exactly MEFT's backward rebuilds each layer's input, by depth:
// float64 streams (divide by λ, β) against the exact fixed-point streams (integer inverse).
//
//   meft-reconstruction [--hidden 256 --heads 4 --batch 8 --seq 128 --init-std 0.02]
//
// For each depth and variant it trains one step (dropout on, float32 compute) with the true
// inputs kept, and prints the largest relative error ||x̂ − x|| / ||x|| over the layers.
#include <cstdio>
#include <random>

#include <CLI/CLI.hpp>

#include "peft/method.h"
#include "core/cpu_backend.h"
#include "model/sequence_classifier.h"

namespace {

double worst_error(meft::Backend& be, const meft::ModelConfig& cfg, int variant, bool exact, double init_std,
                   const meft::HostBatch& b) {
    nlohmann::json j = {{"name", "meft" + std::to_string(variant)},
                        {"adapter", {{"init_std", init_std}}},
                        {"meft", {{"streams", exact ? "exact" : "float64"}, {"keep_true_inputs", true}}}};
    meft::SequenceClassifier m(cfg, be, meft::DType::F32, meft::parse_method(j, "bench"));
    m.init_weights(7);
    m.params().zero_grads();
    m.forward_backward(b, {true, 3, 1}, 1.0 / b.B);
    double worst = 0;
    for (double e : m.stack_runner()->reconstruction_error()) worst = std::max(worst, e);
    return worst;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"meft-reconstruction: MEFT inverse error by depth, float64 vs exact streams"};
    int hidden = 256, heads = 4, batch = 8, seq = 128;
    double init_std = 0.02;
    std::vector<int> depths = {1, 2, 4, 8, 12, 16, 20, 24};
    app.add_option("--hidden", hidden)->capture_default_str();
    app.add_option("--heads", heads)->capture_default_str();
    app.add_option("--batch", batch)->capture_default_str();
    app.add_option("--seq", seq)->capture_default_str();
    app.add_option("--init-std", init_std, "weights and adapters N(0, std^2)")->capture_default_str();
    app.add_option("--depths", depths)->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    auto be = meft::make_cpu_backend();
    std::mt19937_64 rng(5);
    std::printf("<!-- meft-reconstruction: hidden %d, heads %d, batch %d x seq %d, init std %g, float32 compute, dropout 0.1 -->\n",
                hidden, heads, batch, seq, init_std);
    std::printf("| layers | MEFT1 float64 | MEFT1 exact | MEFT2 float64 | MEFT2 exact | MEFT3 float64 | MEFT3 exact |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (int depth : depths) {
        meft::ModelConfig cfg;
        cfg.vocab_size = 1000;
        cfg.hidden_size = hidden;
        cfg.num_heads = heads;
        cfg.intermediate_size = 4 * hidden;
        cfg.num_layers = depth;
        cfg.max_position_embeddings = std::max(512, seq);
        cfg.initializer_range = init_std;
        cfg.set_num_labels(2);
        meft::HostBatch b;
        b.B = batch;
        b.T = seq;
        for (int i = 0; i < batch * seq; ++i) {
            b.input_ids.push_back(1 + static_cast<int>(rng() % 999));
            b.token_type_ids.push_back(0);
            b.attention_mask.push_back(1);
        }
        b.labels.assign(static_cast<std::size_t>(batch), 1);
        std::printf("| %d", depth);
        for (int v : {1, 2, 3})
            for (bool exact : {false, true}) std::printf(" | %.2e", worst_error(*be, cfg, v, exact, init_std, b));
        std::printf(" |\n");
        std::fflush(stdout);
    }
    return 0;
}
