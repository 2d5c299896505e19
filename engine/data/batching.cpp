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
    for (int r = 0; r < b.B; ++r) {
        const Example& e = examples[indices[static_cast<std::size_t>(r)]];
        const int len = static_cast<int>(e.input_ids.size());
        const int keep = std::min(len, b.T);
        for (int t = 0; t < keep; ++t) {
            // when truncating, the last slot takes the example's last token
            const int src = (len > b.T && t == keep - 1) ? len - 1 : t;
            const std::size_t j = static_cast<std::size_t>(r) * b.T + t;
            b.input_ids[j] = e.input_ids[static_cast<std::size_t>(src)];
            b.token_type_ids[j] = e.token_type_ids.empty() ? 0 : e.token_type_ids[static_cast<std::size_t>(src)];
            b.attention_mask[j] = e.attention_mask.empty() ? 1 : e.attention_mask[static_cast<std::size_t>(src)];
        }
        b.labels.push_back(e.label);
        b.targets.push_back(e.target);
    }
    return b;
}

std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed) {
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::mt19937_64 rng(seed);  // mt19937_64's output sequence is fixed by the standard
    for (std::size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
    return idx;
}

}  // namespace meft
