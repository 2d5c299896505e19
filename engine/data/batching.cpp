#include "data/batching.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/error.h"

namespace meft {

HostBatch make_batch(const std::vector<Example>& examples, std::span<const std::size_t> indices, int pad_id,
                     int max_len) {
    HostBatch b;
    b.B = static_cast<int>(indices.size());
    for (std::size_t i : indices) b.T = std::max<int>(b.T, static_cast<int>(examples.at(i).input_ids.size()));
    b.T = std::min(b.T, max_len);
    const std::size_t n = static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T);
    b.input_ids.assign(n, pad_id);
    b.token_type_ids.assign(n, 0);
    b.attention_mask.assign(n, 0);
    const bool lm = !indices.empty() && !examples.at(indices[0]).token_labels.empty();
    if (lm) b.token_labels.assign(n, -100);
    for (int r = 0; r < b.B; ++r) {
        const Example& e = examples[indices[static_cast<std::size_t>(r)]];
        const int len = static_cast<int>(e.input_ids.size());
        const int keep = std::min(len, b.T);
        if (lm != !e.token_labels.empty() || (lm && e.token_labels.size() != e.input_ids.size()))
            throw Error("example " + std::to_string(indices[static_cast<std::size_t>(r)]) +
                        ": token labels missing or not one per token (a batch mixes LM and classification examples?)");
        for (int t = 0; t < keep; ++t) {
            // When truncating, a classification example's last slot takes its last token (the
            // closing separator); a causal LM example loses tokens from its start, so the
            // labelled continuation stays whole.
            const int src = lm ? len - keep + t : (len > b.T && t == keep - 1) ? len - 1 : t;
            const std::size_t j = static_cast<std::size_t>(r) * b.T + t;
            if (lm) b.token_labels[j] = e.token_labels[static_cast<std::size_t>(src)];
            b.input_ids[j] = e.input_ids[static_cast<std::size_t>(src)];
            b.token_type_ids[j] = e.token_type_ids.empty() ? 0 : e.token_type_ids[static_cast<std::size_t>(src)];
            b.attention_mask[j] = e.attention_mask.empty() ? 1 : e.attention_mask[static_cast<std::size_t>(src)];
        }
        b.labels.push_back(e.label);
        b.targets.push_back(e.target);
    }
    return b;
}

int loss_weight(const Example& e) {
    if (e.token_labels.empty()) return 1;
    int n = 0;
    for (std::size_t t = 1; t < e.token_labels.size(); ++t) n += e.token_labels[t] >= 0;
    return n;
}

std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed) {
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::mt19937_64 rng(seed);  // mt19937_64's output sequence is fixed by the standard
    for (std::size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
    return idx;
}

}  // namespace meft
