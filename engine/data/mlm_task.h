// mlm_task.h — masked-LM pre-training data (task "mlm"): text from files, folders and GLUE tasks'
// training splits, split into training and held-out documents, packed into blocks of the
// sequence length (text_corpus.h), the held-out blocks masked once for evaluation.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/example.h"
#include "data/text_corpus.h"
#include "data/text_encoding.h"
#include "data/tokenizer.h"

namespace meft {

struct MlmTaskRequest {
    std::vector<CorpusSource> files;  // plain text, .jsonl, folders
    // GLUE tasks whose training split's sentences are documents too (never dev or test): name, folder.
    std::vector<std::pair<std::string, std::filesystem::path>> glue_train;
    double held_out = 0.05;           // share of documents held out for evaluation
    double mask_probability = 0.15;
    bool whole_word = false;
    int block_tokens = 128;           // the sequence length
    std::uint64_t seed = 0;           // the split's shuffle and the evaluation masks
    int max_train_blocks = 0;         // > 0: the first N blocks only
    int max_dev_blocks = 0;
    TextDecoding decoding;
};

// The documents of every source (files first, then the GLUE tasks' sentences: each text_a and
// text_b a document of its own), in order.
std::vector<std::string> mlm_documents(const MlmTaskRequest& r);

// TaskData named "mlm": train = unmasked blocks, dev = held-out blocks masked once with
// philox_key(seed, kEvalMaskStep, kMaskingSite), masking = the options training masks with.
// Throws Error for bad text (text_corpus.h), too little text for one training block, or a
// held-out share that leaves no evaluation block (the message says how many tokens it had).
TaskData load_mlm_task(const MlmTaskRequest& r, const Tokenizer& tok);

// One training step's examples, masked: copies of examples[indices[i]] masked with
// philox_key(seed, step, kMaskingSite) and the block's index in `examples` (so its masks do not
// depend on the batch it lands in or how the step is split into micro-batches).
std::vector<Example> masked_step_examples(const std::vector<Example>& examples, const std::vector<std::size_t>& indices,
                                          const MaskingOptions& o, std::uint64_t seed, std::uint32_t step);

}  // namespace meft
