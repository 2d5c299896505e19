#include "data/batching.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/error.h"

namespace meft {

namespace {
// Whether e belongs to the same training unit as the example before it: both pairs of one question.
bool continues_unit(const Example& prev, const Example& e) {
    return is_choice_pair(prev) && is_choice_pair(e) && prev.group == e.group;
}
}  // namespace

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
        if (!is_choice_pair(e)) continue;
        if (r > 0 && continues_unit(examples[indices[static_cast<std::size_t>(r) - 1]], e)) ++b.choice_counts.back();
        else b.choice_counts.push_back(1);
    }
    if (const int pairs = std::accumulate(b.choice_counts.begin(), b.choice_counts.end(), 0); pairs != 0 && pairs != b.B)
        throw Error("a batch mixes " + std::to_string(pairs) + " multiple-choice pairs with " + std::to_string(b.B - pairs) +
                    " other examples");
    return b;
}

std::vector<std::size_t> unit_starts(const std::vector<Example>& examples) {
    std::vector<std::size_t> starts;
    for (std::size_t i = 0; i < examples.size(); ++i)
        if (i == 0 || !continues_unit(examples[i - 1], examples[i])) starts.push_back(i);
    starts.push_back(examples.size());
    return starts;
}

std::vector<std::size_t> unit_rows(const std::vector<std::size_t>& starts, std::span<const std::size_t> units) {
    std::vector<std::size_t> rows;
    for (std::size_t u : units)
        for (std::size_t i = starts.at(u); i < starts.at(u + 1); ++i) rows.push_back(i);
    return rows;
}

std::vector<std::pair<std::size_t, std::size_t>> micro_batch_ranges(const std::vector<Example>& examples,
                                                                    std::span<const std::size_t> indices, int parts) {
    std::vector<std::size_t> begins;  // offsets where a unit begins, then indices.size()
    for (std::size_t k = 0; k < indices.size(); ++k)
        if (k == 0 || !continues_unit(examples.at(indices[k - 1]), examples.at(indices[k]))) begins.push_back(k);
    begins.push_back(indices.size());
    const std::size_t units = begins.size() - 1;
    const std::size_t n = std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(std::max(parts, 1)), units));
    std::vector<std::pair<std::size_t, std::size_t>> out;
    if (units == 0) return out;
    for (std::size_t m = 0; m < n; ++m)
        out.emplace_back(begins[units * m / n], begins[units * (m + 1) / n]);
    return out;
}

int loss_weight(const Example& e) {
    if (is_choice_pair(e)) return e.label == 1 ? 1 : 0;
    if (e.token_labels.empty()) return 1;
    int n = 0;
    for (std::size_t t = e.masked_lm ? 0 : 1; t < e.token_labels.size(); ++t) n += e.token_labels[t] >= 0;
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
