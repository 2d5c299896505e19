// batching.h — turning examples into padded HostBatches.
#pragma once
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "data/example.h"
#include "model/batch.h"

namespace meft {

// Pads the examples at `indices` to the longest of them (at most max_len tokens; longer
// examples are truncated keeping the first max_len-1 tokens and the last one, so the closing
// separator survives). pad_id fills input_ids; masks are 0 and token types 0 on padding.
// Consecutive choice pairs of one question become one entry of choice_counts.
HostBatch make_batch(const std::vector<Example>& examples, std::span<const std::size_t> indices, int pad_id,
                     int max_len);

// Training units: a multiple-choice question's pairs (consecutive choice pairs of one group) are
// one unit, which no batch or micro-batch splits; every other example is a unit alone. Returns the
// first index of each unit, then examples.size().
std::vector<std::size_t> unit_starts(const std::vector<Example>& examples);

// The rows of the units `units` (indices into unit_starts' units), in that order.
std::vector<std::size_t> unit_rows(const std::vector<std::size_t>& starts, std::span<const std::size_t> units);

// A step's rows (whole units, in order) cut into at most `parts` micro-batches holding nearly equal
// numbers of units, never inside a unit: [begin, end) offsets into indices. For examples that are
// units alone this is an even split of the rows.
std::vector<std::pair<std::size_t, std::size_t>> micro_batch_ranges(const std::vector<Example>& examples,
                                                                    std::span<const std::size_t> indices, int parts);

// Deterministic Fisher-Yates permutation of 0..n-1 from a seed.
std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed);

}  // namespace meft
