#include "data/mlm_task.h"

#include "core/error.h"
#include "core/philox.h"
#include "data/glue.h"

namespace meft {

std::vector<std::string> mlm_documents(const MlmTaskRequest& r) {
    std::vector<std::string> docs;
    if (!r.files.empty()) docs = read_corpus(r.files, r.decoding);
    for (const auto& [task, dir] : r.glue_train) {
        const GlueSplit split = load_glue(task, dir, "train", r.decoding);
        for (const TextExample& x : split.examples) {
            docs.push_back(x.text_a);
            if (x.text_b) docs.push_back(*x.text_b);
        }
    }
    if (docs.empty()) throw Error("task mlm: no text (set task.text to files, folders or GLUE tasks)");
    return docs;
}

namespace {
std::vector<Example> as_examples(std::vector<std::vector<std::int32_t>> blocks, int limit) {
    if (limit > 0 && blocks.size() > static_cast<std::size_t>(limit)) blocks.resize(static_cast<std::size_t>(limit));
    std::vector<Example> out;
    out.reserve(blocks.size());
    for (auto& b : blocks) {
        Example e;
        e.input_ids = std::move(b);
        out.push_back(std::move(e));
    }
    return out;
}
}  // namespace

TaskData load_mlm_task(const MlmTaskRequest& r, const Tokenizer& tok) {
    auto masking = std::make_shared<MaskingOptions>(masking_options(tok, r.mask_probability, r.whole_word));
    CorpusSplit split = split_documents(mlm_documents(r), r.held_out, r.seed);
    TaskData t;
    t.name = "mlm";
    t.train = as_examples(pack_blocks(tok, split.train, r.block_tokens), r.max_train_blocks);
    if (!split.held_out.empty()) {
        try {
            t.dev = as_examples(pack_blocks(tok, split.held_out, r.block_tokens), r.max_dev_blocks);
        } catch (const Error& e) {
            throw Error(std::string("task mlm: the held-out documents (task.held_out ") + std::to_string(r.held_out) +
                        " of them) do not fill one block: " + e.what());
        }
        const PhiloxKey key = philox_key(r.seed, kEvalMaskStep, kMaskingSite);
        for (std::size_t i = 0; i < t.dev.size(); ++i) {
            mask_tokens(*masking, key, static_cast<std::uint32_t>(i), t.dev[i].input_ids, t.dev[i].token_labels);
            t.dev[i].masked_lm = true;
        }
    }
    t.masking = std::move(masking);
    return t;
}

std::vector<Example> masked_step_examples(const std::vector<Example>& examples, const std::vector<std::size_t>& indices,
                                          const MaskingOptions& o, std::uint64_t seed, std::uint32_t step) {
    const PhiloxKey key = philox_key(seed, step, kMaskingSite);
    std::vector<Example> out;
    out.reserve(indices.size());
    for (std::size_t i : indices) {
        Example e = examples[i];
        mask_tokens(o, key, static_cast<std::uint32_t>(i), e.input_ids, e.token_labels);
        e.masked_lm = true;
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace meft
