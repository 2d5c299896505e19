// batching.h — turning examples into padded HostBatches.
#pragma once
#include <cstddef>
#include <span>
#include <vector>

#include "data/example.h"
#include "model/batch.h"

namespace meft {

// Pads the examples at `indices` to the longest of them (at most max_len tokens; longer
// examples are truncated keeping the first max_len-1 tokens and the last one, so the closing
// separator survives). pad_id fills input_ids; masks are 0 and token types 0 on padding.
HostBatch make_batch(const std::vector<Example>& examples, std::span<const std::size_t> indices, int pad_id,
                     int max_len);

// Deterministic Fisher-Yates permutation of 0..n-1 from a seed.
std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed);

}  // namespace meft
