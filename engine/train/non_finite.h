// non_finite.h — when a step's loss or gradient norm is NaN or Inf, find the tensor where the
// non-finite values first appear, so the failure names its origin instead of just "loss is nan".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/example.h"
#include "model/model.h"

namespace meft {

// True when every element of a floating-point tensor is finite (other dtypes: true).
bool all_finite(Backend& backend, Tensor t);

// Looks, in this order, at the weights (a parameter already holding NaN/Inf), the forward
// activations of the step's micro-batches (re-run with the step's dropout masks; the first
// saved tensor in forward order) and the parameter gradients of the failed step. Returns a
// description such as "activation 'attn.probs' of layer 2 (forward)", or "" when every tensor
// it can see is finite. Leaves the gradients as they were.
std::string locate_non_finite(Model& model, const std::vector<Example>& examples,
                              const std::vector<std::size_t>& indices, int micro_batches, int max_seq_length,
                              std::uint64_t seed, std::uint32_t step);

}  // namespace meft
