#include "data/choice_prompt.h"

#include <algorithm>

#include "core/error.h"
#include "data/qa.h"
#include "data/tokenizer.h"

namespace meft {

ChoicePrompt choice_prompt(const std::string& task, const ChoiceExample& item) {
    const std::string name = qa_task(task).name;
    ChoicePrompt p;
    if (name == "piqa") p.context = "Question: " + item.question + " Answer:";
    else if (name == "openbookqa") p.context = item.question;
    else if (name == "arc_easy" || name == "arc_challenge") p.context = "Question: " + item.question + "\nAnswer:";
    else if (name == "sciq") p.context = item.context + "\nQuestion: " + item.question + "\nAnswer:";
    else throw Error("no causal-LM prompt for QA task \"" + name + "\"");
    for (const std::string& c : item.choices) p.continuations.push_back(" " + c);
    p.answer = item.answer;
    return p;
}

LmSequence lm_sequence(const Tokenizer& tok, const std::string& context, const std::string& continuation,
                       int max_length, std::int32_t bos) {
    std::vector<std::int32_t> ctx = tok.encode_text(context);
    const std::vector<std::int32_t> cont = tok.encode_text(continuation);
    const std::size_t fixed = cont.size() + (bos >= 0 ? 1 : 0);
    if (max_length > 0 && fixed > static_cast<std::size_t>(max_length))
        throw Error("the continuation \"" + continuation + "\" takes " + std::to_string(cont.size()) +
                    " tokens, more than max_length " + std::to_string(max_length) + " leaves for it");
    if (max_length > 0 && fixed + ctx.size() > static_cast<std::size_t>(max_length))
        ctx.erase(ctx.begin(), ctx.begin() + static_cast<std::ptrdiff_t>(fixed + ctx.size() - max_length));
    LmSequence s;
    if (bos >= 0) {
        s.ids.push_back(bos);
        s.labels.push_back(kIgnoreLabel);
    }
    s.ids.insert(s.ids.end(), ctx.begin(), ctx.end());
    s.labels.insert(s.labels.end(), ctx.size(), kIgnoreLabel);
    s.ids.insert(s.ids.end(), cont.begin(), cont.end());
    s.labels.insert(s.labels.end(), cont.begin(), cont.end());
    s.continuation_tokens = static_cast<int>(cont.size());
    return s;
}

ChoiceScores score_choices(const std::vector<double>& loglik, const std::vector<std::string>& continuations) {
    std::vector<std::size_t> bytes;
    for (const std::string& c : continuations) bytes.push_back(c.size());
    return score_choices(loglik, bytes);
}

ChoiceScores score_choices(const std::vector<double>& loglik, const std::vector<std::size_t>& lengths) {
    MEFT_CHECK(loglik.size() == lengths.size() && !loglik.empty(), "score_choices: one score per choice");
    ChoiceScores s;
    s.loglik = loglik;
    for (std::size_t i = 0; i < loglik.size(); ++i) {
        const double bytes = double(std::max<std::size_t>(1, lengths[i]));
        s.loglik_norm.push_back(loglik[i] / bytes);
        if (s.pred < 0 || loglik[i] > s.loglik[s.pred]) s.pred = static_cast<int>(i);
        if (s.pred_norm < 0 || s.loglik_norm[i] > s.loglik_norm[s.pred_norm]) s.pred_norm = static_cast<int>(i);
    }
    return s;
}

}  // namespace meft
