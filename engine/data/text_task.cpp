#include "data/text_task.h"

#include "data/glue.h"

namespace meft {

std::vector<Example> tokenize_examples(const Tokenizer& tok, const std::vector<TextExample>& in, int max_length) {
    std::vector<Example> out;
    out.reserve(in.size());
    for (const TextExample& t : in) {
        Encoding e = tok.encode(t.text_a, t.text_b ? std::optional<std::string_view>(*t.text_b) : std::nullopt, max_length);
        Example x;
        x.input_ids = std::move(e.input_ids);
        x.token_type_ids = std::move(e.token_type_ids);
        x.attention_mask = std::move(e.attention_mask);
        x.label = t.label;
        x.target = t.target;
        out.push_back(std::move(x));
    }
    return out;
}

TaskData load_glue_task(const GlueTaskRequest& r, const Tokenizer& tok, std::vector<std::string>* warnings) {
    const GlueTaskInfo& info = glue_task(r.task);
    auto load = [&](const std::string& split, int limit) {
        GlueSplit s = load_glue(info.name, r.dir, split, r.decoding);
        if (warnings) warnings->insert(warnings->end(), s.warnings.begin(), s.warnings.end());
        if (limit > 0 && static_cast<int>(s.examples.size()) > limit) s.examples.resize(static_cast<std::size_t>(limit));
        return tokenize_examples(tok, s.examples, r.max_seq_length);
    };
    TaskData t;
    t.name = info.name;
    t.metric_task = info.name;
    t.num_labels = info.regression ? 1 : info.num_labels();
    t.train = load("train", r.max_train_examples);
    t.dev = load(r.dev_split.empty() ? "dev" : r.dev_split, r.max_dev_examples);
    if (info.name == "mnli" && r.dev_split.empty()) {  // papers report both MNLI dev sets
        t.dev_extra = load("dev_mismatched", r.max_dev_examples);
        t.dev_name = "matched";
        t.dev_extra_name = "mismatched";
    }
    return t;
}

}  // namespace meft
