// Multiple-choice QA as causal language modelling: the prompts of spec §7.2, the LM sequences
// (labels only on the answer's tokens, left truncation) and the two harness accuracies.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/choice_prompt.h"
#include "data/qa.h"
#include "data/tokenizer.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace meft;
using meft::test::error_of;

namespace {

const fs::path kShared = fs::path(MEFT_SHARED_DIR);
const fs::path kRoberta = kShared / "models" / "roberta-base-tokenizer";  // GPT-2 byte-level BPE, as OPT's

ChoiceExample item(std::string question, std::vector<std::string> choices, int answer, std::string context = {}) {
    ChoiceExample e;
    e.question = std::move(question);
    e.choices = std::move(choices);
    e.answer = answer;
    e.context = std::move(context);
    return e;
}

TEST(ChoicePrompt, EachTaskUsesThePromptOfTheSpec) {
    const ChoiceExample q = item("Why?", {"because", "no"}, 1, "Support text.");
    EXPECT_EQ(choice_prompt("piqa", q).context, "Question: Why? Answer:");
    EXPECT_EQ(choice_prompt("openbookqa", q).context, "Why?");
    EXPECT_EQ(choice_prompt("arc_easy", q).context, "Question: Why?\nAnswer:");
    EXPECT_EQ(choice_prompt("ARC-Challenge", q).context, "Question: Why?\nAnswer:");
    EXPECT_EQ(choice_prompt("sciq", q).context, "Support text.\nQuestion: Why?\nAnswer:");
    const ChoicePrompt p = choice_prompt("obqa", q);
    EXPECT_EQ(p.continuations, (std::vector<std::string>{" because", " no"}));
    EXPECT_EQ(p.answer, 1);
    EXPECT_NE(error_of([&] { choice_prompt("sst2", q); }).find("sst2"), std::string::npos);
}

TEST(ChoicePrompt, LabelsCoverTheContinuationOnlyAndTruncationKeepsIt) {
    MEFT_REQUIRE_DIR(kRoberta, "the byte-level BPE tokenizer is not tested");
    const auto tok = load_tokenizer(kRoberta);
    const std::string context = "Question: Which gas do plants take in from the air?\nAnswer:";
    const std::string cont = " carbon dioxide";
    const LmSequence s = lm_sequence(*tok, context, cont, 0, 2);
    const auto ctx_ids = tok->encode_text(context), cont_ids = tok->encode_text(cont);
    ASSERT_EQ(s.ids.size(), 1 + ctx_ids.size() + cont_ids.size());
    ASSERT_EQ(s.labels.size(), s.ids.size());
    EXPECT_EQ(s.ids[0], 2);
    EXPECT_EQ(s.continuation_tokens, static_cast<int>(cont_ids.size()));
    for (std::size_t t = 0; t < s.ids.size(); ++t) {
        const bool answer = t >= s.ids.size() - cont_ids.size();
        EXPECT_EQ(s.labels[t], answer ? s.ids[t] : kIgnoreLabel) << "t=" << t;
    }
    // max_length cuts the context from its start; the answer stays whole.
    const int max_len = 1 + static_cast<int>(cont_ids.size()) + 3;
    const LmSequence cut = lm_sequence(*tok, context, cont, max_len, 2);
    ASSERT_EQ(static_cast<int>(cut.ids.size()), max_len);
    EXPECT_EQ(cut.ids[0], 2);
    EXPECT_TRUE(std::equal(ctx_ids.end() - 3, ctx_ids.end(), cut.ids.begin() + 1));
    EXPECT_TRUE(std::equal(cont_ids.begin(), cont_ids.end(), cut.ids.end() - static_cast<long>(cont_ids.size())));
    const std::string err = error_of([&] { lm_sequence(*tok, context, cont, 2, 2); });
    EXPECT_NE(err.find("max_length 2"), std::string::npos) << err;
}

TEST(ChoicePrompt, AccuracyAndLengthNormalisedAccuracy) {
    // The short answer has the higher sum; the long one the higher likelihood per byte.
    const std::vector<std::string> cont = {" a long answer here", " no"};
    const ChoiceScores s = score_choices({-20.0, -8.0}, cont);
    EXPECT_EQ(s.pred, 1);
    EXPECT_EQ(s.pred_norm, 0);
    EXPECT_DOUBLE_EQ(s.loglik_norm[0], -20.0 / 19);
    EXPECT_DOUBLE_EQ(s.loglik_norm[1], -8.0 / 3);
    const ChoiceScores tie = score_choices({-1.0, -1.0, -1.0}, {" x", " y", " z"});  // ties: the first
    EXPECT_EQ(tie.pred, 0);
    EXPECT_EQ(tie.pred_norm, 0);
}

// The prompts of the real ARC-Easy dev file: every item gives a context ending in "Answer:" and
// one continuation per choice, and its gold sequence fits 128 tokens with the answer whole.
TEST(ChoicePrompt, RealArcEasyItemsBecomeSequences) {
    const fs::path dir = kShared / "data" / "qa" / "ARC-Easy";
    MEFT_REQUIRE_DIR(dir, "the real QA files are not tested");
    MEFT_REQUIRE_DIR(kRoberta, "the byte-level BPE tokenizer is not tested");
    const auto tok = load_tokenizer(kRoberta);
    const std::vector<ChoiceExample> dev = load_qa("arc_easy", dir, "dev");
    ASSERT_GT(dev.size(), 100u);
    for (const ChoiceExample& e : dev) {
        const ChoicePrompt p = choice_prompt("arc_easy", e);
        ASSERT_EQ(p.continuations.size(), e.choices.size()) << e.id;
        ASSERT_EQ(p.context.rfind("Question: ", 0), 0u) << e.id;
        ASSERT_TRUE(p.context.size() > 8 && p.context.substr(p.context.size() - 8) == "\nAnswer:") << e.id;
        const LmSequence s = lm_sequence(*tok, p.context, p.continuations[p.answer], 128, 2);
        ASSERT_LE(s.ids.size(), 128u) << e.id;
        ASSERT_GT(s.continuation_tokens, 0) << e.id;
    }
}

}  // namespace
