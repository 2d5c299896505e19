// batch.h — one batch of tokenized examples as the host prepares it.
#pragma once
#include <cstdint>
#include <vector>

namespace meft {

struct HostBatch {
    int B = 0;                                  // examples
    int T = 0;                                  // padded sequence length
    std::vector<std::int32_t> input_ids;        // [B*T]
    std::vector<std::int32_t> token_type_ids;   // [B*T]
    std::vector<std::int32_t> attention_mask;   // [B*T], 1 = token, 0 = padding
    std::vector<std::int32_t> labels;           // [B] class ids (classification)
    std::vector<double> targets;                // [B] values (regression)
    // [B*T] causal LM labels, -100 (kIgnoreLabel) where no token is predicted; empty for
    // classification. Unshifted, as Hugging Face takes them: position t-1 predicts labels[t].
    std::vector<std::int32_t> token_labels;
    // Multiple choice over (context, choice) pairs: the rows of each question, in order (they sum to
    // B; a question's rows are consecutive). labels[r] is then 1 for the gold choice, 0 otherwise.
    // Empty for every other task.
    std::vector<int> choice_counts;
    int example_offset = 0;                     // index of row 0 within its optimizer step
};

}  // namespace meft
