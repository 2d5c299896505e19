// test_wordpiece.cpp — the BERT WordPiece tokenizer against Hugging Face `tokenizers`:
// llama.cpp's 46 reference strings (ids produced by HF for the bert-base-uncased vocabulary),
// pair templates, longest-first truncation, and hand-derived normalization cases.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/wordpiece.h"

namespace {

using meft::WordPieceOptions;
using meft::WordPieceTokenizer;
using Ids = std::vector<std::int32_t>;

const std::filesystem::path kShared = MEFT_SHARED_DIR;
const std::filesystem::path kBert = kShared / "models" / "bert-tiny-tokenizer";
const std::filesystem::path kVectors = kShared / "tokenizer-tests" / "llama.cpp";

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool have(const std::filesystem::path& p) {
    if (std::filesystem::exists(p)) return true;
    std::fprintf(stderr, "\n*** SKIPPED: %s missing ***\n\n", p.string().c_str());
    return false;
}

#define REQUIRE_FILE(p)                                                 \
    do {                                                                \
        if (!have(p)) GTEST_SKIP() << "SKIPPED: " << (p) << " missing"; \
    } while (0)

// The tokenizer from vocab.txt, shared by the tests (building it is cheap, but once is enough).
const WordPieceTokenizer& bert() {
    static auto t = WordPieceTokenizer::from_files(kBert / "vocab.txt");
    return *t;
}

// A tiny vocabulary written to a temporary file, for hand-made cases.
std::filesystem::path write_vocab(const std::string& name, const std::vector<std::string>& tokens) {
    const auto p = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".txt");
    std::ofstream out(p, std::ios::binary);
    for (const auto& t : tokens) out << t << "\n";
    return p;
}

std::unique_ptr<WordPieceTokenizer> tiny(const WordPieceOptions& o = {}) {
    const auto p = write_vocab(
        "meft_wp_tiny", {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a",    "b", "c",     "d",    "e",   "f", "g",
                         "h",     "##b",   "##c",   "ab",    "abc",    "##bc", "!", "hello", "##lo", "hel", "é", "i"});
    auto t = WordPieceTokenizer::from_files(p, o);
    std::filesystem::remove(p);
    return t;
}

struct Case {
    std::string text;
    Ids ids;
};

std::vector<Case> llama_cases() {
    const std::string inp = slurp(kVectors / "ggml-vocab-bert-bge.gguf.inp");
    const std::string out = slurp(kVectors / "ggml-vocab-bert-bge.gguf.out");
    const std::string sepr = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    std::size_t pos = 0;
    while (true) {
        const std::size_t k = inp.find(sepr, pos);
        if (k == std::string::npos) break;
        texts.push_back(inp.substr(pos, k - pos));
        pos = k + sepr.size();
    }
    std::vector<Case> cases;
    std::istringstream lines(out);
    std::string line;
    for (std::size_t i = 0; std::getline(lines, line); ++i) {
        Case c;
        c.text = i < texts.size() ? texts[i] : std::string("<missing input>");
        std::istringstream nums(line);
        std::int32_t v = 0;
        while (nums >> v) c.ids.push_back(v);
        cases.push_back(std::move(c));
    }
    EXPECT_EQ(texts.size(), cases.size());
    return cases;
}

void check_llama_vectors(const WordPieceTokenizer& t) {
    const auto cases = llama_cases();
    ASSERT_EQ(cases.size(), 46u);
    int bad = 0;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const Ids got = t.encode_text(cases[i].text);
        if (got != cases[i].ids) ++bad;
        EXPECT_EQ(got, cases[i].ids) << "case " << i << ": \"" << cases[i].text << "\"";
    }
    EXPECT_EQ(bad, 0);
}

// ---------------------------------------------------------------------------------------------

TEST(WordPiece, LlamaCppVectorsFromVocabTxt) {
    REQUIRE_FILE(kBert / "vocab.txt");
    REQUIRE_FILE(kVectors / "ggml-vocab-bert-bge.gguf.inp");
    check_llama_vectors(bert());
}

TEST(WordPiece, LlamaCppVectorsFromTokenizerJson) {
    REQUIRE_FILE(kBert / "tokenizer.json");
    REQUIRE_FILE(kVectors / "ggml-vocab-bert-bge.gguf.inp");
    const auto t = WordPieceTokenizer::from_tokenizer_json(kBert / "tokenizer.json");
    check_llama_vectors(*t);
}

TEST(WordPiece, BothLoadersAgree) {
    REQUIRE_FILE(kBert / "vocab.txt");
    REQUIRE_FILE(kBert / "tokenizer.json");
    const auto j = WordPieceTokenizer::from_tokenizer_json(kBert / "tokenizer.json");
    const auto& v = bert();
    EXPECT_EQ(j->vocab_size(), 30522);
    EXPECT_EQ(v.vocab_size(), 30522);
    EXPECT_EQ(j->pad_id(), 0);
    EXPECT_EQ(v.pad_id(), 0);
    EXPECT_EQ(j->num_special_tokens(false), 2);
    EXPECT_EQ(j->num_special_tokens(true), 3);
    for (int id : {0, 100, 101, 102, 103, 1037, 7592, 29754, 30521}) EXPECT_EQ(j->token(id), v.token(id));
    const std::string text = "Mr. Smith's [MASK] café costs $5.99 — naïve 東京 tokenizers!!";
    EXPECT_EQ(j->encode_text(text), v.encode_text(text));
    EXPECT_EQ(j->encode(text, "and a [SEP] second", 12).input_ids, v.encode(text, "and a [SEP] second", 12).input_ids);
}

TEST(WordPiece, TokensOfKnownWords) {
    REQUIRE_FILE(kBert / "vocab.txt");
    const auto& t = bert();
    EXPECT_EQ(t.token(0), "[PAD]");
    EXPECT_EQ(t.token(100), "[UNK]");
    EXPECT_EQ(t.token(101), "[CLS]");
    EXPECT_EQ(t.token(102), "[SEP]");
    EXPECT_EQ(t.token(7592), "hello");
    EXPECT_EQ(t.token_to_id("world"), 2088);
    EXPECT_FALSE(t.token_to_id("no-such-token").has_value());
    EXPECT_THROW(t.token(30522), meft::Error);
    EXPECT_THROW(t.token(-1), meft::Error);
    // llama.cpp case "Äpfel": accents stripped, then ap ##fe ##l.
    EXPECT_EQ(t.tokenize("Äpfel"), (std::vector<std::string>{"ap", "##fe", "##l"}));
}

TEST(WordPiece, PairEncodingAndTokenTypes) {
    REQUIRE_FILE(kBert / "vocab.txt");
    const auto& t = bert();
    const auto e = t.encode("Hello world", std::string_view("How are you?"), 0);
    EXPECT_EQ(e.input_ids, (Ids{101, 7592, 2088, 102, 2129, 2024, 2017, 1029, 102}));
    EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 0, 1, 1, 1, 1, 1}));
    EXPECT_EQ(e.attention_mask, Ids(9, 1));

    const auto s = t.encode("Hello world!", std::nullopt, 0);
    EXPECT_EQ(s.input_ids, (Ids{101, 7592, 2088, 999, 102}));
    EXPECT_EQ(s.token_type_ids, Ids(5, 0));
    EXPECT_EQ(s.attention_mask, Ids(5, 1));

    // Empty texts still get their special tokens.
    EXPECT_EQ(t.encode("", std::string_view(""), 0).input_ids, (Ids{101, 102, 102}));
    EXPECT_EQ(t.encode("", std::string_view(""), 0).token_type_ids, (Ids{0, 0, 1}));
    EXPECT_EQ(t.encode(" \t", std::nullopt, 0).input_ids, (Ids{101, 102}));
}

TEST(WordPiece, LongestFirstLengthsMatchTokenizersUnitTest) {
    // The table of tokenizers' own test (utils/truncation.rs, max_length 7; lengths 0, 2, 4, 8).
    struct Row {
        std::size_t n1, n2, e1, e2;
    };
    const Row rows[] = {{0, 0, 0, 0}, {0, 2, 0, 2}, {0, 4, 0, 4}, {0, 8, 0, 7}, {2, 0, 2, 0}, {2, 2, 2, 2},
                        {2, 4, 2, 4}, {2, 8, 2, 5}, {4, 0, 4, 0}, {4, 2, 4, 2}, {4, 4, 3, 4}, {4, 8, 3, 4},
                        {8, 0, 7, 0}, {8, 2, 5, 2}, {8, 4, 4, 3}, {8, 8, 3, 4}};
    for (const auto& r : rows) {
        const auto [a, b] = meft::longest_first_lengths(r.n1, r.n2, 7);
        EXPECT_EQ(a, r.e1) << r.n1 << "," << r.n2;
        EXPECT_EQ(b, r.e2) << r.n1 << "," << r.n2;
    }
    // Equal lengths: the odd token goes to the second, so the first loses one more.
    EXPECT_EQ(meft::longest_first_lengths(5, 5, 9), (std::pair<std::size_t, std::size_t>{4, 5}));
    EXPECT_EQ(meft::longest_first_lengths(5, 5, 8), (std::pair<std::size_t, std::size_t>{4, 4}));
    EXPECT_EQ(meft::longest_first_lengths(6, 5, 9), (std::pair<std::size_t, std::size_t>{5, 4}));
    EXPECT_EQ(meft::longest_first_lengths(5, 6, 9), (std::pair<std::size_t, std::size_t>{4, 5}));
    EXPECT_EQ(meft::longest_first_lengths(3, 9, 0), (std::pair<std::size_t, std::size_t>{0, 0}));
    EXPECT_EQ(meft::longest_first_lengths(3, 9, 5), (std::pair<std::size_t, std::size_t>{2, 3}));
    EXPECT_EQ(meft::longest_first_lengths(2, 9, 5), (std::pair<std::size_t, std::size_t>{2, 3}));
}

TEST(WordPiece, TruncationInEncode) {
    REQUIRE_FILE(kBert / "vocab.txt");
    const auto& t = bert();
    const std::int32_t a = 1037, b = 1038, c = 1039, d = 1040, e = 1041, f = 1042, g = 1043, h = 1044;
    // 4 + 4 tokens, max_length 10 = 3 special + 7: the first keeps 3, the second 4.
    auto r = t.encode("a b c d", std::string_view("e f g h"), 10);
    EXPECT_EQ(r.input_ids, (Ids{101, a, b, c, 102, e, f, g, h, 102}));
    EXPECT_EQ(r.token_type_ids, (Ids{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
    EXPECT_EQ(r.attention_mask, Ids(10, 1));
    // (That was the tie: equal lengths, one token too many, and it came off the first.)
    r = t.encode("a b c d", std::string_view("e f g h"), 11);
    EXPECT_EQ(r.input_ids, (Ids{101, a, b, c, d, 102, e, f, g, h, 102}));
    // 5 + 5 into 9: first 4, second 5.
    r = t.encode("a b c d e", std::string_view("f g h a b"), 12);
    EXPECT_EQ(r.input_ids, (Ids{101, a, b, c, d, 102, f, g, h, a, b, 102}));
    // 5 + 5 into 8: 4 each.
    r = t.encode("a b c d e", std::string_view("f g h a b"), 11);
    EXPECT_EQ(r.input_ids, (Ids{101, a, b, c, d, 102, f, g, h, a, 102}));
    // The longer one shrinks alone while that is enough.
    r = t.encode("a b", std::string_view("c d e f g h"), 8);
    EXPECT_EQ(r.input_ids, (Ids{101, a, b, 102, c, d, e, 102}));
    r = t.encode("a b c d e f", std::string_view("g h"), 8);
    EXPECT_EQ(r.input_ids, (Ids{101, a, b, c, 102, g, h, 102}));
    // First longer, both cut: the first (longer) keeps the odd token.
    r = t.encode("a b c d e f", std::string_view("g h e f"), 8);
    EXPECT_EQ(r.input_ids, (Ids{101, a, b, c, 102, g, h, 102}));
    r = t.encode("a b c d e f", std::string_view("g h e"), 9);
    EXPECT_EQ(r.input_ids, (Ids{101, a, b, c, 102, g, h, e, 102}));
    // Truncation counts word pieces, not words.
    r = t.encode("Hello world!", std::nullopt, 4);
    EXPECT_EQ(r.input_ids, (Ids{101, 7592, 2088, 102}));
    // Single text; exactly the special tokens; no room; no limit.
    EXPECT_EQ(t.encode("a b c d e", std::nullopt, 4).input_ids, (Ids{101, a, b, 102}));
    EXPECT_EQ(t.encode("a b c d e", std::nullopt, 2).input_ids, (Ids{101, 102}));
    EXPECT_EQ(t.encode("a b", std::string_view("c"), 3).input_ids, (Ids{101, 102, 102}));
    EXPECT_THROW(t.encode("a b", std::nullopt, 1), meft::Error);
    EXPECT_THROW(t.encode("a b", std::string_view("c"), 2), meft::Error);
    EXPECT_THROW(t.encode("a b", std::nullopt, -1), meft::Error);
    EXPECT_EQ(t.encode("a b c d e", std::nullopt, 100).input_ids.size(), 7u);
}

TEST(WordPiece, OverlongWordIsOneUnk) {
    REQUIRE_FILE(kBert / "vocab.txt");
    const auto& t = bert();
    EXPECT_EQ(t.encode_text(std::string(101, 'a')), (Ids{100}));
    EXPECT_EQ(t.encode_text("x " + std::string(101, 'a') + " x"), (Ids{1060, 100, 1060}));
    const Ids hundred = t.encode_text(std::string(100, 'a'));
    EXPECT_GT(hundred.size(), 1u);  // 100 code points is still segmented
    // The limit counts code points, not bytes: 100 Cyrillic letters are 200 bytes.
    std::string zh;
    for (int i = 0; i < 100; ++i) zh += "ж";
    const Ids z = t.encode_text(zh);
    EXPECT_EQ(z.size(), 100u);  // ж ##ж ##ж ...
    EXPECT_EQ(z[0], 1186);
    EXPECT_EQ(z[1], 29743);
    EXPECT_EQ(t.encode_text(zh + "ж"), (Ids{100}));
    // A word with no segmentation is one [UNK], not pieces plus [UNK].
    EXPECT_EQ(t.encode_text("hello☃"), (Ids{100}));
    EXPECT_EQ(t.encode_text("hello ☃"), (Ids{7592, 100}));
}

TEST(WordPiece, AccentsCjkAndControlCharacters) {
    REQUIRE_FILE(kBert / "vocab.txt");
    const auto& t = bert();
    EXPECT_EQ(t.encode_text("Héllo"), (Ids{7592}));
    EXPECT_EQ(t.encode_text("HÉLLO"), (Ids{7592}));
    EXPECT_EQ(t.encode_text("He\xCC\x81llo"), (Ids{7592}));  // e + combining acute
    EXPECT_EQ(t.normalize("Héllo Wörld"), "hello world");
    EXPECT_EQ(t.normalize("İstanbul"), "istanbul");  // NFD first: I + U+0307, the mark dropped
    EXPECT_EQ(t.encode_text("İstanbul"), (Ids{9960}));
    // CJK ideographs become words of their own; kana and hangul are not padded.
    EXPECT_EQ(t.normalize("apple工作"), "apple 工  作 ");
    EXPECT_EQ(t.encode_text("我想在apple"), (Ids{1855, 100, 100, 6207}));
    EXPECT_EQ(t.normalize("カタカナ"), "カタカナ");
    // Control characters vanish without splitting the word; \t \n \r and other spaces split.
    EXPECT_EQ(t.encode_text("Hel\x01lo"), (Ids{7592}));
    EXPECT_EQ(t.encode_text("Hel\x7Flo"), (Ids{7592}));
    EXPECT_EQ(t.encode_text(std::string("Hel\0lo", 6)), (Ids{7592}));
    EXPECT_EQ(t.encode_text("Hel\xE2\x80\x8Blo"), (Ids{7592}));  // U+200B zero width space (Cf)
    EXPECT_EQ(t.encode_text("Hel\xEF\xBF\xBDlo"), (Ids{7592}));  // U+FFFD
    EXPECT_EQ(t.encode_text("Hel\xEE\x80\x80lo"), (Ids{7592}));  // U+E000 private use (Co)
    EXPECT_EQ(t.encode_text("Hel\xFFlo"), (Ids{7592}));          // invalid UTF-8
    EXPECT_EQ(t.encode_text("Hello\tworld\r\n"), (Ids{7592, 2088}));
    EXPECT_EQ(t.encode_text("Hello\xC2\xA0world"), (Ids{7592, 2088}));      // U+00A0 (Zs)
    EXPECT_EQ(t.encode_text("Hello\xE3\x80\x80world"), (Ids{7592, 2088}));  // U+3000 (Zs)
    EXPECT_EQ(t.encode_text("Hello\xE2\x80\xA8world"), (Ids{7592, 2088}));  // U+2028 (Zl: White_Space)
    // \v and U+0085 are White_Space but also Cc: clean_text removes them, joining the words.
    EXPECT_EQ(t.tokenize("Hello\x0Bworld"), (std::vector<std::string>{"hello", "##world"}));
    EXPECT_EQ(t.tokenize("Hello\xC2\x85world"), (std::vector<std::string>{"hello", "##world"}));
}

TEST(WordPiece, Punctuation) {
    REQUIRE_FILE(kBert / "vocab.txt");
    const auto& t = bert();
    // ASCII symbols that are not Unicode punctuation still split ($ + ^ ` | ~ < = >).
    EXPECT_EQ(t.tokenize("$5+a"), (std::vector<std::string>{"$", "5", "+", "a"}));
    EXPECT_EQ(t.tokenize("a|b~c"), (std::vector<std::string>{"a", "|", "b", "~", "c"}));
    EXPECT_EQ(t.tokenize("hello—world"), (std::vector<std::string>{"hello", "—", "world"}));  // Pd
    EXPECT_EQ(t.tokenize("«hi»"), (std::vector<std::string>{"«", "hi", "»"}));                // Pi / Pf
    EXPECT_EQ(t.tokenize("y'all"), (std::vector<std::string>{"y", "'", "all"}));
    EXPECT_EQ(t.tokenize("..."), (std::vector<std::string>{".", ".", "."}));
}

TEST(WordPiece, SpecialTokensInTextAreMatchedVerbatim) {
    REQUIRE_FILE(kBert / "vocab.txt");
    const auto& t = bert();
    EXPECT_EQ(t.encode_text("[CLS] hi [SEP]"), (Ids{101, 7632, 102}));
    EXPECT_EQ(t.encode_text("hi[MASK]hi"), (Ids{7632, 103, 7632}));
    // Lower case is not the special token: it is normalized and split like any text.
    EXPECT_EQ(t.tokenize("[mask]"), (std::vector<std::string>{"[", "mask", "]"}));
    EXPECT_EQ(t.tokenize("[Mask]"), (std::vector<std::string>{"[", "mask", "]"}));
}

TEST(WordPiece, HandMadeGreedyLongestMatch) {
    const auto t = tiny();
    // Longest prefix first, then longest "##" continuation.
    EXPECT_EQ(t->tokenize("abc"), (std::vector<std::string>{"abc"}));
    EXPECT_EQ(t->tokenize("abbc"), (std::vector<std::string>{"ab", "##bc"}));
    EXPECT_EQ(t->tokenize("abcbc"), (std::vector<std::string>{"abc", "##bc"}));
    EXPECT_EQ(t->tokenize("hello!"), (std::vector<std::string>{"hello", "!"}));
    EXPECT_EQ(t->tokenize("hello"), (std::vector<std::string>{"hello"}));
    EXPECT_EQ(t->tokenize("hellolo"), (std::vector<std::string>{"hello", "##lo"}));
    // "ba": b is a token but "##a" is not, so the whole word is [UNK] (greedy, no backtracking).
    EXPECT_EQ(t->tokenize("ba"), (std::vector<std::string>{"[UNK]"}));
    EXPECT_EQ(t->tokenize("abd"), (std::vector<std::string>{"[UNK]"}));
    EXPECT_EQ(t->pad_id(), 0);
    EXPECT_EQ(t->vocab_size(), 24);
}

TEST(WordPiece, OptionsCaseAndAccents) {
    WordPieceOptions cased;
    cased.do_lower_case = false;  // strip_accents follows: off
    const auto c = tiny(cased);
    EXPECT_EQ(c->normalize("Héllo"), "Héllo");
    EXPECT_EQ(c->tokenize("Hello"), (std::vector<std::string>{"[UNK]"}));
    EXPECT_EQ(c->tokenize("é"), (std::vector<std::string>{"é"}));

    WordPieceOptions keep_accents;
    keep_accents.strip_accents = false;
    const auto k = tiny(keep_accents);
    EXPECT_EQ(k->normalize("HÉ"), "hé");
    // Full lower case (Rust to_lowercase): U+0130 becomes i + U+0307 when accents are kept.
    EXPECT_EQ(k->normalize("İ"), "i\xCC\x87");
    EXPECT_EQ(k->tokenize("İ"), (std::vector<std::string>{"[UNK]"}));

    WordPieceOptions strip_only;
    strip_only.do_lower_case = false;
    strip_only.strip_accents = true;
    EXPECT_EQ(tiny(strip_only)->normalize("Héllo"), "Hello");

    WordPieceOptions no_cjk;
    no_cjk.tokenize_chinese_chars = false;
    EXPECT_EQ(tiny(no_cjk)->normalize("a工b"), "a工b");
    EXPECT_EQ(tiny()->normalize("a工b"), "a 工 b");

    WordPieceOptions short_words;
    short_words.max_input_chars_per_word = 3;
    const auto s = tiny(short_words);
    EXPECT_EQ(s->tokenize("abc ab abbc"), (std::vector<std::string>{"abc", "ab", "[UNK]"}));
}

TEST(WordPiece, TokenizerJsonVariants) {
    const auto dir = std::filesystem::temp_directory_path();
    const auto p = dir / ("meft_wp_tok_" + std::to_string(::getpid()) + ".json");
    auto write = [&](const std::string& s) {
        std::ofstream out(p, std::ios::binary);
        out << s;
    };
    const std::string vocab =
        R"("vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5, "<mark>": 6, "Hello": 7})";
    // BertProcessing, strip_accents null following lowercase false, a non-special normalized token.
    write(R"({"added_tokens": [{"id": 6, "content": "<MARK>", "single_word": false, "lstrip": true, "rstrip": false,
              "normalized": true, "special": false}],
             "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                            "strip_accents": null, "lowercase": false},
             "pre_tokenizer": {"type": "BertPreTokenizer"},
             "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
             "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                       "max_input_chars_per_word": 100, )" +
          vocab + "}}");
    auto t = WordPieceTokenizer::from_tokenizer_json(p);
    EXPECT_EQ(t->encode_text("Hello world"), (Ids{7, 5}));
    EXPECT_EQ(t->encode_text("hello  <MARK>world"), (Ids{4, 6, 5}));  // lstrip eats the spaces
    EXPECT_EQ(t->encode("hello", std::string_view("world"), 0).input_ids, (Ids{2, 4, 3, 5, 3}));
    EXPECT_EQ(t->encode("hello", std::string_view("world"), 0).token_type_ids, (Ids{0, 0, 0, 1, 1}));
    EXPECT_EQ(t->token(6), "<MARK>");  // an added token's content wins over the model entry
    // tokenizer_config.json's do_lower_case replaces the normalizer's (BertTokenizerFast rule);
    // the normalized added token now matches its lower-cased form.
    t->apply_tokenizer_config(true, std::nullopt, true);
    EXPECT_EQ(t->encode_text("Hello world"), (Ids{4, 5}));
    EXPECT_EQ(t->encode_text("hello <mark>"), (Ids{4, 6}));

    // No normalizer, no pre-tokenizer, no post-processor.
    write(R"({"normalizer": null, "pre_tokenizer": null, "post_processor": null,
             "model": {"type": "WordPiece", "unk_token": "[UNK]", )" +
          vocab + "}}");
    t = WordPieceTokenizer::from_tokenizer_json(p);
    EXPECT_EQ(t->encode_text("Hello"), (Ids{7}));
    EXPECT_EQ(t->encode_text("hello world"), (Ids{1}));  // one "word" with a space: unknown
    EXPECT_EQ(t->encode("Hello", std::string_view("Hello"), 0).input_ids, (Ids{7, 7}));
    EXPECT_EQ(t->encode("Hello", std::string_view("Hello"), 0).token_type_ids, (Ids{0, 1}));
    EXPECT_EQ(t->pad_id(), 0);

    // Errors name the file and the key.
    write(R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})");
    std::string msg;
    try {
        WordPieceTokenizer::from_tokenizer_json(p);
    } catch (const meft::Error& e) {
        msg = e.what();
    }
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("model.type"), std::string::npos) << msg;

    write(R"({"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}})");
    msg.clear();
    try {
        WordPieceTokenizer::from_tokenizer_json(p);
    } catch (const meft::Error& e) {
        msg = e.what();
    }
    EXPECT_NE(msg.find("[UNK]"), std::string::npos) << msg;

    write(R"({"normalizer": {"type": "NFKC"}, "model": {"type": "WordPiece", )" + vocab + "}}");
    msg.clear();
    try {
        WordPieceTokenizer::from_tokenizer_json(p);
    } catch (const meft::Error& e) {
        msg = e.what();
    }
    EXPECT_NE(msg.find("normalizer"), std::string::npos) << msg;

    write("{not json");
    EXPECT_THROW(WordPieceTokenizer::from_tokenizer_json(p), meft::Error);
    std::filesystem::remove(p);
}

TEST(WordPiece, VocabTxtErrors) {
    const auto missing = std::filesystem::temp_directory_path() / "meft_wp_no_such_vocab.txt";
    std::string msg;
    try {
        WordPieceTokenizer::from_files(missing);
    } catch (const meft::Error& e) {
        msg = e.what();
    }
    EXPECT_NE(msg.find(missing.string()), std::string::npos) << msg;

    const auto p = write_vocab("meft_wp_nocls", {"[PAD]", "[UNK]", "[SEP]", "a"});
    msg.clear();
    try {
        WordPieceTokenizer::from_files(p);
    } catch (const meft::Error& e) {
        msg = e.what();
    }
    std::filesystem::remove(p);
    EXPECT_NE(msg.find("[CLS]"), std::string::npos) << msg;
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
}

// A number past double's range is nlohmann's out_of_range, not a parse_error (found by the fuzz targets).
TEST(WordPiece, JsonNumberOverflowIsAnError) {
    const auto p = std::filesystem::temp_directory_path() / ("meft_wp_huge_" + std::to_string(::getpid()) + ".json");
    std::ofstream(p, std::ios::binary) << R"({"model": {"type": "WordPiece", "vocab": {"a": 1e999}}})";
    std::string msg;
    try {
        WordPieceTokenizer::from_tokenizer_json(p);
    } catch (const meft::Error& e) {
        msg = e.what();
    }
    std::filesystem::remove(p);
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;
}

TEST(WordPiece, CrlfVocabulary) {
    const auto p = std::filesystem::temp_directory_path() / ("meft_wp_crlf_" + std::to_string(::getpid()) + ".txt");
    {
        std::ofstream out(p, std::ios::binary);
        out << "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello";  // no final newline
    }
    const auto t = WordPieceTokenizer::from_files(p);
    std::filesystem::remove(p);
    EXPECT_EQ(t->vocab_size(), 5);
    EXPECT_EQ(t->encode_text("Hello"), (Ids{4}));
}

TEST(WordPiece, Sst2TrainSpeed) {
    const auto file = kShared / "data" / "glue" / "SST-2" / "train.tsv";
    REQUIRE_FILE(file);
    REQUIRE_FILE(kBert / "vocab.txt");
    const auto& t = bert();
    std::ifstream in(file);
    std::string line;
    std::vector<std::string> sentences;
    std::getline(in, line);  // header
    while (std::getline(in, line)) sentences.push_back(line.substr(0, line.find('\t')));
    ASSERT_GT(sentences.size(), 60000u);
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t tokens = 0;
    for (const auto& s : sentences) tokens += t.encode(s, std::nullopt, 128).input_ids.size();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("SST-2 train: %zu sentences, %zu tokens in %.3f s\n", sentences.size(), tokens, sec);
    EXPECT_LT(sec, 30.0);  // typically well under a second; generous for a loaded machine
}

}  // namespace
