#include "data/toy_task.h"

#include <random>

#include "core/error.h"
#include "model/arch/arch.h"

namespace meft {

namespace {
constexpr int kNoiseFirst = 1000, kNoiseCount = 900;  // noise ids [1000, 1900)
constexpr int kSignalFirst = 2000, kSignalsPerClass = 8;

std::vector<Example> generate(const ToyTaskConfig& c, const ModelConfig& m, int count, std::uint64_t seed) {
    const ArchSpec& spec = arch_spec(m.arch);
    const int cls = spec.begin_token(m), sep = spec.end_token(m);
    std::mt19937_64 rng(seed);
    auto uniform = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<std::uint64_t>(hi - lo + 1)); };
    std::vector<Example> out;
    out.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        Example e;
        e.label = uniform(0, c.num_labels - 1);
        const int len = uniform(c.min_length, c.max_length);
        e.input_ids.assign(static_cast<std::size_t>(len), 0);
        e.input_ids.front() = cls;
        e.input_ids.back() = sep;
        for (int t = 1; t < len - 1; ++t) e.input_ids[static_cast<std::size_t>(t)] = kNoiseFirst + uniform(0, kNoiseCount - 1);
        const int signals = uniform(1, std::min(3, len - 2));
        for (int s = 0; s < signals; ++s)
            e.input_ids[static_cast<std::size_t>(uniform(1, len - 2))] =
                kSignalFirst + e.label * kSignalsPerClass + uniform(0, kSignalsPerClass - 1);
        out.push_back(std::move(e));
    }
    return out;
}
}  // namespace

TaskData make_toy_task(const ToyTaskConfig& c, const ModelConfig& m) {
    if (c.num_labels < 2 || c.num_labels > 100) throw Error("toy task: num_labels must be in [2, 100]");
    if (c.min_length < 3 || c.max_length < c.min_length)
        throw Error("toy task: need 3 <= min_length <= max_length");
    if (c.train_examples < 1 || c.dev_examples < 1) throw Error("toy task: train and dev need at least one example");
    if (m.vocab_size < kSignalFirst + c.num_labels * kSignalsPerClass)
        throw Error("toy task: the model's vocabulary (" + std::to_string(m.vocab_size) + ") is too small; need " +
                    std::to_string(kSignalFirst + c.num_labels * kSignalsPerClass));
    TaskData t;
    t.name = "toy";
    t.num_labels = c.num_labels;
    t.train = generate(c, m, c.train_examples, c.seed * 2 + 0);
    t.dev = generate(c, m, c.dev_examples, c.seed * 2 + 1);
    return t;
}

}  // namespace meft
