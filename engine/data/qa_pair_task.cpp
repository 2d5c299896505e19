#include "data/qa_pair_task.h"

#include "data/qa.h"

namespace meft {

ChoicePairs choice_pairs(const std::string& task, const ChoiceExample& item) {
    const std::string name = qa_task(task).name;
    ChoicePairs p;
    p.first = item.question;
    if (name == "sciq" && !item.context.empty()) p.first += " " + item.context;
    p.seconds = item.choices;
    p.answer = item.answer;
    return p;
}

namespace {
void add_question(std::vector<Example>& out, const Tokenizer& tok, const ChoicePairs& p, int question,
                  int max_length) {
    for (std::size_t k = 0; k < p.seconds.size(); ++k) {
        Encoding enc = tok.encode(p.first, p.seconds[k], max_length);
        Example e;
        e.input_ids = std::move(enc.input_ids);
        e.token_type_ids = std::move(enc.token_type_ids);
        e.attention_mask = std::move(enc.attention_mask);
        e.group = question;
        e.choice = static_cast<int>(k);
        e.label = p.answer < 0 ? -1 : static_cast<int>(k) == p.answer ? 1 : 0;
        out.push_back(std::move(e));
    }
}
}  // namespace

TaskData load_qa_pair_task(const QaTaskRequest& r, const Tokenizer& tok) {
    const QaTaskInfo& info = qa_task(r.task);
    TaskData t;
    t.name = info.name;
    t.choice_pairs = true;
    t.num_labels = 1;
    if (r.load_train)
        for (const IndexedQuestion& q : requested_questions(r, true))
            add_question(t.train, tok, choice_pairs(info.name, q.item), q.index, r.max_seq_length);
    for (const IndexedQuestion& q : requested_questions(r, false))
        add_question(t.dev, tok, choice_pairs(info.name, q.item), q.index, r.max_seq_length);
    return t;
}

}  // namespace meft
