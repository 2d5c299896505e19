#include "data/qa_lm_task.h"

#include "core/error.h"
#include "data/choice_prompt.h"
#include "data/qa.h"

namespace meft {

namespace {
Example lm_example(const Tokenizer& tok, const ChoicePrompt& p, int k, int question, const QaTaskRequest& r,
                   const std::string& split) {
    LmSequence s;
    try {
        s = lm_sequence(tok, p.context, p.continuations[static_cast<std::size_t>(k)], r.max_seq_length, r.bos);
    } catch (const Error& e) {
        throw Error(r.task + " " + split + " question " + std::to_string(question) + ", choice " + std::to_string(k) +
                    ": " + e.what());
    }
    Example e;
    e.input_ids = std::move(s.ids);
    e.token_labels = std::move(s.labels);
    e.group = question;
    e.choice = k;
    e.label = p.answer < 0 ? -1 : k == p.answer ? 1 : 0;
    e.continuation_bytes = static_cast<int>(p.continuations[static_cast<std::size_t>(k)].size());
    return e;
}
}  // namespace

TaskData load_qa_lm_task(const QaTaskRequest& r, const Tokenizer& tok) {
    const QaTaskInfo& info = qa_task(r.task);
    TaskData t;
    t.name = info.name;
    t.choice_lm = true;
    t.num_labels = 2;  // gold / not gold per choice sequence
    if (r.load_train)
        for (const IndexedQuestion& q : requested_questions(r, true)) {
            const ChoicePrompt p = choice_prompt(info.name, q.item);
            t.train.push_back(lm_example(tok, p, p.answer, q.index, r, "train"));
        }
    const std::string dev = r.dev_split.empty() ? "dev" : r.dev_split;
    for (const IndexedQuestion& q : requested_questions(r, false)) {
        const ChoicePrompt p = choice_prompt(info.name, q.item);
        for (int k = 0; k < static_cast<int>(p.continuations.size()); ++k)
            t.dev.push_back(lm_example(tok, p, k, q.index, r, dev));
    }
    return t;
}

}  // namespace meft
