// Pre-training text: reading a corpus (plain text, .jsonl, folders) and every error it reports,
// packing encodings into blocks with the real bert-base-uncased tokenizer, the held-out split, and
// MLM masking (rates, 80/10/10, specials, determinism, whole words).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/philox.h"
#include "data/text_corpus.h"
#include "data/tokenizer.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace meft;
using meft::test::error_of;
using meft::test::write_bytes;

namespace {

fs::path bert_tokenizer() { return fs::path(MEFT_SHARED_DIR) / "models" / "bert-tiny-tokenizer"; }  // bert-base-uncased vocab
fs::path roberta_tokenizer() { return fs::path(MEFT_SHARED_DIR) / "models" / "roberta-base-tokenizer"; }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class Corpus : public meft::test::TempDirTest {
protected:
    fs::path write(const std::string& rel, const std::string& bytes) {
        const fs::path p = dir_ / rel;
        fs::create_directories(p.parent_path());
        write_bytes(p, bytes);
        return p;
    }
    std::vector<std::string> read(const fs::path& p, const std::string& field = "text") {
        return read_corpus({CorpusSource{p, field}});
    }
};

}  // namespace

// ---- plain text ------------------------------------------------------------------------------------------

TEST_F(Corpus, PlainTextDocumentsAreSeparatedByBlankLinesAndTheirLinesJoined) {
    // Blank lines of only whitespace separate too; CRLF, a BOM and a missing final newline are fine.
    const auto f = write("a.txt", "\xEF\xBB\xBF  first line \r\n second\tline  \r\n\r\n \t \n\n\nthird\n \f\nfourth  ");
    EXPECT_EQ(read(f), (std::vector<std::string>{"first line second\tline", "third", "fourth"}));
}

TEST_F(Corpus, TextIsNeverChangedBeyondTheWhitespaceJoin) {
    // Non-ASCII text, inner runs of spaces, tabs and punctuation come through byte for byte.
    const std::string doc = "na\xC3\xAFve  \xE6\x9D\xB1\xE4\xBA\xAC\t\xF0\x9F\x98\x80 -- \"quoted\" {json-like: 1}";
    const auto f = write("u.txt", doc + "\n");
    EXPECT_EQ(read(f), std::vector<std::string>{doc});
}

TEST_F(Corpus, Latin1IsTranscodedWhenAsked) {
    const auto f = write("l.txt", "caf\xE9 cr\xE8me\n");
    TextDecoding latin1;
    latin1.encoding = TextEncoding::latin1;
    EXPECT_EQ(read_corpus({CorpusSource{f}}, latin1), std::vector<std::string>{"caf\xC3\xA9 cr\xC3\xA8me"});
}

TEST_F(Corpus, BytesThatAreNotUtf8NameFileLineByteAndTheAdvice) {
    const auto f = write("bad.txt", "fine\n\nalso fine\ncaf\xE9 au lait\n");
    TextDecoding d;
    d.advice = "pass --corpus-encoding latin-1";
    const std::string msg = error_of([&] { read_corpus({CorpusSource{f}}, d); });
    EXPECT_TRUE(contains(msg, f.string() + ":4: byte 4: not valid UTF-8")) << msg;
    EXPECT_TRUE(contains(msg, "pass --corpus-encoding latin-1")) << msg;
}

TEST_F(Corpus, ABinaryFileNamesTheFileAndTheNulOffset) {
    const auto f = write("model.bin", std::string("line one\nab\0cd", 14));
    const std::string msg = error_of([&] { read(f); });
    EXPECT_TRUE(contains(msg, f.string() + ":2: a NUL byte at byte offset 11 ")) << msg;
    EXPECT_TRUE(contains(msg, "binary")) << msg;
}

TEST_F(Corpus, AGitLfsPointerIsNotReadAsText) {
    const auto f = write("big.txt", "version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 12\n");
    EXPECT_TRUE(contains(error_of([&] { read(f); }), f.string() + ":1: this is a Git LFS pointer")) << f;
}

// ---- JSON lines ------------------------------------------------------------------------------------------

TEST_F(Corpus, JsonlDocumentsAreTheTextFieldOfEachLine) {
    const auto f = write("c.jsonl",
                         "{\"text\": \"  kept as is \\n with a newline\", \"id\": 1}\n"
                         "\n   \r\n"
                         "{\"id\": 2, \"text\": \"second\"}\r\n"
                         "{\"text\": \" \\t \"}\n"  // blank text: no document, as a blank line in a .txt
                         "{\"text\": \"third \\u00e9\"}");
    EXPECT_EQ(read(f), (std::vector<std::string>{"  kept as is \n with a newline", "second", "third \xC3\xA9"}));

    const auto g = write("d.JSONL", "{\"body\": \"from body\", \"text\": \"not this\"}\n");
    EXPECT_EQ(read(g, "body"), std::vector<std::string>{"from body"});
}

TEST_F(Corpus, MalformedJsonlLinesNameFileLineAndWhatIsWrong) {
    const std::string ok = "{\"text\": \"fine\"}\n\n";  // lines 1-2; the faulty line is 3
    struct Case {
        std::string line, says;
    };
    for (const Case& c : {Case{"{\"text\": \"unterminated}", "not valid JSON"},
                          Case{"[\"text\", \"a list\"]", "expected a JSON object, got array"},
                          Case{"{\"body\": \"other key\"}", "the object has no key 'text'"},
                          Case{"{\"text\": 42}", "key 'text' must be a string, got number 42"},
                          Case{"{\"text\": null}", "key 'text' must be a string, got null"}}) {
        const auto f = write("bad.jsonl", ok + c.line + "\n" + ok);
        const std::string msg = error_of([&] { read(f); });
        EXPECT_TRUE(contains(msg, f.string() + ":3: " + c.says)) << c.line << " -> " << msg;
    }
    const auto latin = write("latin.jsonl", ok + "{\"text\": \"caf\xE9\"}\n");
    EXPECT_TRUE(contains(error_of([&] { read(latin); }), latin.string() + ":3: byte 14: not valid UTF-8"));
}

// ---- folders and several sources -------------------------------------------------------------------------

TEST_F(Corpus, AFolderIsReadRecursivelyInPathOrderWithoutHiddenNames) {
    write("corpus/b.txt", "b one\n\nb two\n");
    write("corpus/a/z.jsonl", "{\"text\": \"a/z\"}\n");
    write("corpus/a/y.txt", "a/y\n");
    write("corpus/c.md", "c\n");
    write("corpus/.hidden.txt", "never\n");
    write("corpus/.git/objects.txt", "never either\n");
    write("corpus/a/.DS_Store", std::string("\0\0bin", 5));  // would be a binary-file error if read
    EXPECT_EQ(read(dir_ / "corpus"), (std::vector<std::string>{"a/y", "a/z", "b one", "b two", "c"}));
}

TEST_F(Corpus, SourcesKeepTheirOrderAndTheirOwnTextField) {
    const auto first = write("z.jsonl", "{\"t\": \"from z\"}\n");
    const auto second = write("a.txt", "from a\n");
    EXPECT_EQ(read_corpus({CorpusSource{first, "t"}, CorpusSource{second}}),
              (std::vector<std::string>{"from z", "from a"}));
}

TEST_F(Corpus, MissingPathsEmptyFoldersAndEmptyCorporaAreErrors) {
    const fs::path missing = dir_ / "nowhere.txt";
    EXPECT_TRUE(contains(error_of([&] { read(missing); }), missing.string() + ": corpus source does not exist"));

    fs::create_directories(dir_ / "empty");
    EXPECT_TRUE(contains(error_of([&] { read(dir_ / "empty"); }), (dir_ / "empty").string() + ": the corpus folder has no files"));
    write("only_hidden/.x.txt", "text\n");
    EXPECT_TRUE(contains(error_of([&] { read(dir_ / "only_hidden"); }), "has no files"));

    const auto blank = write("blank.txt", "\n  \n\t\n");
    const auto blank_jsonl = write("blanks/b.jsonl", "{\"text\": \"\"}\n\n");
    write("blanks/c.txt", "");
    const std::string msg = error_of([&] { read_corpus({CorpusSource{blank}, CorpusSource{dir_ / "blanks"}}); });
    EXPECT_TRUE(contains(msg, "the corpus has no text")) << msg;
    EXPECT_TRUE(contains(msg, blank.string())) << msg;
    EXPECT_TRUE(contains(msg, (dir_ / "blanks").string() + " (2 files)")) << msg;

    EXPECT_TRUE(contains(error_of([] { read_corpus({}); }), "no sources"));
}

// ---- packing into blocks ---------------------------------------------------------------------------------

TEST(PackBlocks, BlocksAreTheConcatenatedEncodingsCutInOrderWithTheRemainderDropped) {
    MEFT_REQUIRE_DIR(bert_tokenizer(), "pack_blocks is not tested on the real BERT tokenizer");
    const auto tok = load_tokenizer(bert_tokenizer());
    const std::vector<std::string> docs = {"The quick brown fox jumps over the lazy dog.",
                                           "Unbelievably, tokenization splits words into pieces.", "Short.",
                                           "A fourth document, long enough to cross a block boundary or two."};
    std::vector<std::int32_t> all;
    for (const auto& d : docs) {
        const auto ids = tok->encode(d, std::nullopt, 0).input_ids;
        EXPECT_EQ(ids.front(), tok->encode("", std::nullopt, 0).input_ids.front());  // [CLS] leads each document
        all.insert(all.end(), ids.begin(), ids.end());
    }
    int block = 7;
    while (all.size() % static_cast<std::size_t>(block) == 0) ++block;  // so that a remainder exists to drop
    const auto blocks = pack_blocks(*tok, docs, block);
    ASSERT_EQ(blocks.size(), all.size() / static_cast<std::size_t>(block));
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        ASSERT_EQ(blocks[b].size(), static_cast<std::size_t>(block));
        EXPECT_TRUE(std::equal(blocks[b].begin(), blocks[b].end(), all.begin() + static_cast<std::ptrdiff_t>(b) * block))
            << "block " << b;
    }
    // One block holding everything but the last token; the whole corpus as exactly one block.
    const int n = static_cast<int>(all.size());
    EXPECT_EQ(pack_blocks(*tok, docs, n - 1), (std::vector<std::vector<std::int32_t>>{{all.begin(), all.end() - 1}}));
    EXPECT_EQ(pack_blocks(*tok, docs, n), (std::vector<std::vector<std::int32_t>>{all}));

    const std::string msg = error_of([&] { pack_blocks(*tok, docs, n + 1); });
    EXPECT_TRUE(contains(msg, std::to_string(n) + " tokens")) << msg;
    EXPECT_TRUE(contains(msg, "one block of " + std::to_string(n + 1) + " tokens")) << msg;
    EXPECT_TRUE(contains(error_of([&] { pack_blocks(*tok, docs, 1); }), "at least 2"));
}

// ---- the held-out split ----------------------------------------------------------------------------------

namespace {
std::vector<std::string> numbered(int n) {
    std::vector<std::string> v;
    for (int i = 0; i < n; ++i) v.push_back("doc " + std::to_string(i));
    return v;
}
}  // namespace

TEST(SplitDocuments, DeterministicShuffleSizesAndAPermutationOfTheInput) {
    const auto docs = numbered(100);
    const CorpusSplit a = split_documents(docs, 0.1, 42), b = split_documents(docs, 0.1, 42);
    EXPECT_EQ(a.train, b.train);
    EXPECT_EQ(a.held_out, b.held_out);
    EXPECT_EQ(a.held_out.size(), 10u);
    EXPECT_EQ(a.train.size(), 90u);
    std::vector<std::string> both = a.held_out;
    both.insert(both.end(), a.train.begin(), a.train.end());
    EXPECT_NE(both, docs);  // shuffled
    std::sort(both.begin(), both.end());
    std::vector<std::string> sorted = docs;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(both, sorted);  // nothing lost or repeated

    const CorpusSplit c = split_documents(docs, 0.1, 43);
    EXPECT_NE(c.held_out, a.held_out);
    // The share only moves the cut: the shuffled order is the seed's alone.
    const CorpusSplit none = split_documents(docs, 0.0, 42);
    EXPECT_TRUE(none.held_out.empty());
    EXPECT_EQ(std::vector<std::string>(none.train.begin(), none.train.begin() + 10), a.held_out);

    EXPECT_EQ(split_documents(numbered(10), 0.01, 1).held_out.size(), 1u);  // round(0.1) = 0, at least 1
    EXPECT_EQ(split_documents(numbered(2), 0.5, 1).held_out.size(), 1u);
    EXPECT_EQ(split_documents(numbered(7), 0.5, 1).held_out.size(), 4u);    // round(3.5)
    EXPECT_EQ(split_documents(numbered(1), 0.0, 1).train.size(), 1u);
}

TEST(SplitDocuments, TheShuffleIsUniform) {
    // Over many seeds every document lands in every position about equally often: catches an
    // off-by-one Fisher–Yates (j drawn from [0, n) or [0, i)), which is biased or never leaves a
    // document in place.
    const int n = 4, seeds = 8000;
    std::vector<std::vector<int>> count(n, std::vector<int>(n, 0));
    for (int s = 0; s < seeds; ++s) {
        const auto out = split_documents(numbered(n), 0.0, static_cast<std::uint64_t>(s)).train;
        for (int pos = 0; pos < n; ++pos) ++count[static_cast<std::size_t>(std::stoi(out[static_cast<std::size_t>(pos)].substr(4)))][static_cast<std::size_t>(pos)];
    }
    const double expected = static_cast<double>(seeds) / n, tolerance = 5 * std::sqrt(expected * (1 - 1.0 / n));
    for (int d = 0; d < n; ++d)
        for (int pos = 0; pos < n; ++pos)
            EXPECT_NEAR(count[static_cast<std::size_t>(d)][static_cast<std::size_t>(pos)], expected, tolerance)
                << "document " << d << " at position " << pos;
}

TEST(SplitDocuments, BadSharesAndTooFewDocumentsAreErrors) {
    for (const double share : {-0.1, 0.51, 1.0, std::numeric_limits<double>::quiet_NaN()})
        EXPECT_TRUE(contains(error_of([&] { split_documents(numbered(10), share, 1); }), "expected 0..0.5")) << share;
    EXPECT_TRUE(contains(error_of([] { split_documents(numbered(1), 0.1, 1); }), "1 document(s) cannot be split"));
    EXPECT_TRUE(contains(error_of([] { split_documents({}, 0.1, 1); }), "0 document(s) cannot be split"));
}

// ---- masking ---------------------------------------------------------------------------------------------

namespace {

// A vocabulary of 1000 ids: 0..3 special ([PAD] [CLS] [SEP] [MASK]), 600..999 continue a word.
constexpr int kVocab = 1000;
constexpr std::int32_t kCls = 1, kSep = 2, kMask = 3, kFirstContinuation = 600;

MaskingOptions toy_options(bool whole_word) {
    MaskingOptions o;
    o.whole_word = whole_word;
    o.mask_id = kMask;
    o.vocab_size = kVocab;
    o.special.assign(kVocab, false);
    for (int id = 0; id <= kMask; ++id) o.special[static_cast<std::size_t>(id)] = true;
    o.continues_word.assign(kVocab, false);
    for (int id = kFirstContinuation; id < kVocab; ++id) o.continues_word[static_cast<std::size_t>(id)] = true;
    return o;
}

// A block: [CLS], words of 1-4 tokens (a start id then continuations), [SEP] every 60 tokens;
// ids spread over the vocabulary from a fixed counter-based draw.
std::vector<std::int32_t> toy_block(std::uint32_t example, int length) {
    std::vector<std::int32_t> ids = {kCls};
    std::uint32_t k = 0;
    while (static_cast<int>(ids.size()) < length) {
        const PhiloxWords w = philox_block(PhiloxKey{7, 7, 0, 0}, example, k++);
        if (ids.size() % 60 == 59) {
            ids.push_back(kSep);
            continue;
        }
        ids.push_back(static_cast<std::int32_t>(4 + w[0] % (kFirstContinuation - 4)));
        for (std::uint32_t c = 0; c < w[1] % 4 && static_cast<int>(ids.size()) < length; ++c)
            ids.push_back(static_cast<std::int32_t>(kFirstContinuation + w[2 + c % 2] % (kVocab - kFirstContinuation)));
    }
    return ids;
}

struct Tally {
    long candidates = 0, selected = 0, masked = 0, randomized = 0, kept = 0;
};

// Checks the invariants of one masked block against its original, and counts what happened.
void check_and_count(const MaskingOptions& o, const std::vector<std::int32_t>& original,
                     const std::vector<std::int32_t>& ids, const std::vector<std::int32_t>& labels, Tally& t) {
    ASSERT_EQ(ids.size(), original.size());
    ASSERT_EQ(labels.size(), original.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const bool special = o.special[static_cast<std::size_t>(original[i])];
        if (!special) ++t.candidates;
        if (labels[i] == kIgnoreLabel) {
            ASSERT_EQ(ids[i], original[i]) << "position " << i << " changed but is not predicted";
            continue;
        }
        ASSERT_FALSE(special) << "special id " << original[i] << " selected at position " << i;
        ASSERT_EQ(labels[i], original[i]) << "position " << i;
        ++t.selected;
        if (ids[i] == o.mask_id) ++t.masked;
        else if (ids[i] == original[i]) ++t.kept;  // (a random draw of the same id counts here: 1 in 996)
        else {
            ASSERT_FALSE(o.special[static_cast<std::size_t>(ids[i])]) << "random replacement " << ids[i] << " is special";
            ++t.randomized;
        }
    }
}

}  // namespace

TEST(MaskTokens, RatesFollowDataCollatorForLanguageModeling) {
    const MaskingOptions o = toy_options(false);
    const PhiloxKey key = philox_key(1234, 5, 0);
    Tally t;
    std::set<std::int32_t> random_ids;
    for (std::uint32_t ex = 0; ex < 200; ++ex) {
        const auto original = toy_block(ex, 512);
        auto ids = original;
        std::vector<std::int32_t> labels;
        mask_tokens(o, key, ex, ids, labels);
        check_and_count(o, original, ids, labels, t);
        for (std::size_t i = 0; i < ids.size(); ++i)
            if (labels[i] != kIgnoreLabel && ids[i] != kMask && ids[i] != original[i]) random_ids.insert(ids[i]);
    }
    ASSERT_GT(t.candidates, 95000);
    EXPECT_NEAR(static_cast<double>(t.selected) / static_cast<double>(t.candidates), 0.15, 0.01);
    const double sel = static_cast<double>(t.selected);
    EXPECT_NEAR(t.masked / sel, 0.8, 0.015);
    EXPECT_NEAR(t.randomized / sel, 0.1, 0.015);
    EXPECT_NEAR(t.kept / sel, 0.1, 0.015);
    // Random replacements reach across the non-special ids (about 1500 draws over 996 ids).
    EXPECT_GT(random_ids.size(), 600u);
    EXPECT_GE(*random_ids.begin(), 4);
    EXPECT_GT(*random_ids.rbegin(), 900);
}

TEST(MaskTokens, TheDrawsFollowTheDocumentedPhiloxLayout) {
    const MaskingOptions o = toy_options(false);
    const PhiloxKey key = philox_key(99, 3, 1);
    const auto original = toy_block(11, 512);
    auto ids = original;
    std::vector<std::int32_t> labels;
    mask_tokens(o, key, 11, ids, labels);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const PhiloxWords w = philox_block(key, 11, static_cast<std::uint32_t>(i));
        const bool selected = !o.special[static_cast<std::size_t>(original[i])] && w[0] < drop_threshold(0.15);
        EXPECT_EQ(labels[i] != kIgnoreLabel, selected) << "position " << i;
        std::int32_t expected = original[i];
        if (selected && w[1] < drop_threshold(0.8)) expected = kMask;
        else if (selected && w[1] < drop_threshold(0.9))  // the specials are ids 0..3: the k-th other id is 4 + k
            expected = 4 + static_cast<std::int32_t>((std::uint64_t{w[2]} * (kVocab - 4)) >> 32);
        EXPECT_EQ(ids[i], expected) << "position " << i;
    }
}

TEST(MaskTokens, RandomIdsSkipSpecialIdsAnywhereInTheVocabulary) {
    // Special ids scattered through the vocabulary, and probability 1: every candidate is selected.
    MaskingOptions o = toy_options(false);
    for (int id = 100; id < kVocab; id += 97) o.special[static_cast<std::size_t>(id)] = true;
    o.special[kVocab - 1] = true;
    o.probability = 1.0;
    Tally t;
    for (std::uint32_t ex = 0; ex < 20; ++ex) {
        auto original = toy_block(ex, 512);
        for (auto& id : original)
            if (o.special[static_cast<std::size_t>(id)] && id > kMask) id = 5;  // keep specials out of the text
        auto ids = original;
        std::vector<std::int32_t> labels;
        mask_tokens(o, philox_key(1, 1, 0), ex, ids, labels);
        check_and_count(o, original, ids, labels, t);
    }
    EXPECT_EQ(t.selected, t.candidates);
    EXPECT_GT(t.randomized, 500);
}

TEST(MaskTokens, TheSameKeyRepeatsAndAnotherKeyOrExampleDoesNot) {
    const MaskingOptions o = toy_options(false);
    const auto original = toy_block(3, 512);
    const auto run = [&](const PhiloxKey& key, std::uint32_t example) {
        auto ids = original;
        std::vector<std::int32_t> labels;
        mask_tokens(o, key, example, ids, labels);
        return std::pair{ids, labels};
    };
    const auto a = run(philox_key(5, 10, 0), 3);
    EXPECT_EQ(a, run(philox_key(5, 10, 0), 3));
    EXPECT_NE(a.second, run(philox_key(5, 11, 0), 3).second);  // the next step masks other positions
    EXPECT_NE(a.second, run(philox_key(6, 10, 0), 3).second);  // another seed
    EXPECT_NE(a.second, run(philox_key(5, 10, 0), 4).second);  // another example
    // Masking is a pure function of the key: labels of an earlier call are replaced, not appended to.
    auto ids = original;
    std::vector<std::int32_t> labels(17, 5);
    mask_tokens(o, philox_key(5, 10, 0), 3, ids, labels);
    EXPECT_EQ(labels, a.second);
}

TEST(MaskTokens, WholeWordsAreSelectedTogetherNeverInPart) {
    const MaskingOptions o = toy_options(true);
    Tally t;
    long words = 0, selected_words = 0, multi_token_selected = 0;
    for (std::uint32_t ex = 0; ex < 200; ++ex) {
        auto original = toy_block(ex, 512);
        original[1] = kFirstContinuation + 1;  // a block cut inside a word: it begins with a continuation
        original[2] = kFirstContinuation + 2;
        auto ids = original;
        std::vector<std::int32_t> labels;
        mask_tokens(o, philox_key(77, 1, 0), ex, ids, labels);
        check_and_count(o, original, ids, labels, t);
        // Words: a token and the continuations after it; a special token ends a word.
        for (std::size_t i = 0; i < original.size();) {
            if (o.special[static_cast<std::size_t>(original[i])]) {
                ++i;
                continue;
            }
            std::size_t end = i + 1;
            while (end < original.size() && o.continues_word[static_cast<std::size_t>(original[end])]) ++end;
            const bool first = labels[i] != kIgnoreLabel;
            for (std::size_t k = i; k < end; ++k)
                ASSERT_EQ(labels[k] != kIgnoreLabel, first) << "example " << ex << ": word at " << i << " split at " << k;
            ++words;
            if (first) {
                ++selected_words;
                if (end - i > 1) ++multi_token_selected;
            }
            i = end;
        }
    }
    EXPECT_NEAR(static_cast<double>(selected_words) / static_cast<double>(words), 0.15, 0.015);
    EXPECT_GT(multi_token_selected, 1000);  // the check above saw many multi-token words
    // Each token of a selected word gets its own 80/10/10, as Hugging Face does per token.
    const double sel = static_cast<double>(t.selected);
    EXPECT_NEAR(t.masked / sel, 0.8, 0.015);
    EXPECT_NEAR(t.randomized / sel, 0.1, 0.015);
}

TEST(MaskTokens, AContinuationAfterASpecialTokenStartsItsOwnWord) {
    // [CLS] c c [SEP] c: without the rule the first words would hang on [CLS]/[SEP], which are
    // never selected, so they could never be masked. With probability 1 all of them are.
    MaskingOptions o = toy_options(true);
    o.probability = 1.0;
    std::vector<std::int32_t> ids = {kCls, kFirstContinuation, kFirstContinuation + 1, kSep, kFirstContinuation + 2};
    std::vector<std::int32_t> labels;
    mask_tokens(o, philox_key(1, 1, 0), 0, ids, labels);
    EXPECT_EQ(labels, (std::vector<std::int32_t>{kIgnoreLabel, kFirstContinuation, kFirstContinuation + 1, kIgnoreLabel,
                                                 kFirstContinuation + 2}));
}

TEST(MaskTokens, InconsistentOptionsAndIdsAreErrors) {
    std::vector<std::int32_t> ids = {kCls, 10, 20, kSep}, labels;
    const PhiloxKey key = philox_key(1, 1, 0);
    auto o = toy_options(false);
    o.mask_id = kVocab;
    EXPECT_TRUE(contains(error_of([&] { mask_tokens(o, key, 0, ids, labels); }), "mask token id 1000 is outside the vocabulary"));
    o = toy_options(false);
    o.special.resize(999);
    EXPECT_TRUE(contains(error_of([&] { mask_tokens(o, key, 0, ids, labels); }), "special-token table has 999 entries"));
    o = toy_options(true);
    o.continues_word.clear();
    EXPECT_TRUE(contains(error_of([&] { mask_tokens(o, key, 0, ids, labels); }), "word-continuation table has 0 entries"));
    o = toy_options(false);
    o.continues_word.clear();  // not needed for token masking
    EXPECT_NO_THROW(mask_tokens(o, key, 0, ids, labels));
    o.probability = 1.5;
    EXPECT_TRUE(contains(error_of([&] { mask_tokens(o, key, 0, ids, labels); }), "probability"));
    o = toy_options(false);
    std::vector<std::int32_t> bad = {kCls, 10, kVocab, kSep};
    EXPECT_TRUE(contains(error_of([&] { mask_tokens(o, key, 0, bad, labels); }), "token id 1000 at position 2"));
    o.special.assign(kVocab, true);
    EXPECT_TRUE(contains(error_of([&] { mask_tokens(o, key, 0, ids, labels); }), "every id of the vocabulary is special"));
}

// ---- masking options from a tokenizer --------------------------------------------------------------------

namespace {
// A tokenizer over a given vocabulary (only what masking_options reads).
class ListTokenizer : public Tokenizer {
public:
    explicit ListTokenizer(std::vector<std::string> v) : vocab_(std::move(v)) {}
    std::vector<std::int32_t> encode_text(std::string_view) const override { return {}; }
    Encoding encode(std::string_view, std::optional<std::string_view>, int) const override { return {}; }
    std::string token(std::int32_t id) const override { return vocab_.at(static_cast<std::size_t>(id)); }
    std::int32_t pad_id() const override { return 0; }
    int vocab_size() const override { return static_cast<int>(vocab_.size()); }

private:
    std::vector<std::string> vocab_;
};

std::vector<std::string> specials_of(const Tokenizer& tok, const MaskingOptions& o) {
    std::vector<std::string> out;
    for (int id = 0; id < o.vocab_size; ++id)
        if (o.special[static_cast<std::size_t>(id)]) out.push_back(tok.token(id));
    return out;
}
}  // namespace

TEST(MaskingOptions, WordPieceVocabulary) {
    MEFT_REQUIRE_DIR(bert_tokenizer(), "masking_options is not tested on the real BERT vocabulary");
    const auto tok = load_tokenizer(bert_tokenizer());
    const MaskingOptions o = masking_options(*tok, 0.2, true);
    EXPECT_EQ(o.probability, 0.2);
    EXPECT_TRUE(o.whole_word);
    EXPECT_EQ(o.vocab_size, tok->vocab_size());
    EXPECT_EQ(tok->token(o.mask_id), "[MASK]");
    EXPECT_EQ(specials_of(*tok, o), (std::vector<std::string>{"[PAD]", "[CLS]", "[SEP]", "[MASK]"}));  // not [UNK]
    const auto ids = tok->encode_text("unaffable tokenization");
    ASSERT_GT(ids.size(), 2u);
    for (const std::int32_t id : ids)
        EXPECT_EQ(o.continues_word[static_cast<std::size_t>(id)], tok->token(id).rfind("##", 0) == 0) << tok->token(id);
    EXPECT_TRUE(std::any_of(ids.begin(), ids.end(), [&](std::int32_t id) { return o.continues_word[static_cast<std::size_t>(id)]; }));
}

TEST(MaskingOptions, ByteLevelBpeVocabulary) {
    MEFT_REQUIRE_DIR(roberta_tokenizer(), "masking_options is not tested on the real RoBERTa vocabulary");
    const auto tok = load_tokenizer(roberta_tokenizer());
    const MaskingOptions o = masking_options(*tok, 0.15, true);
    EXPECT_EQ(tok->token(o.mask_id), "<mask>");
    EXPECT_EQ(specials_of(*tok, o), (std::vector<std::string>{"<s>", "<pad>", "</s>", "<mask>"}));  // not <unk>
    const auto enc = tok->encode("Hello tokenization world", std::nullopt, 0).input_ids;
    for (const std::int32_t id : enc) {
        const std::string t = tok->token(id);
        const bool expect = !o.special[static_cast<std::size_t>(id)] && t.rfind("\xC4\xA0", 0) != 0;
        EXPECT_EQ(o.continues_word[static_cast<std::size_t>(id)], expect) << t;
    }
    EXPECT_FALSE(o.continues_word[static_cast<std::size_t>(enc.front())]);  // <s>
}

TEST(MaskingOptions, AVocabularyWithoutAMaskTokenIsAnError) {
    const ListTokenizer tok({"[PAD]", "[CLS]", "[SEP]", "hello", "##s"});
    const std::string msg = error_of([&] { masking_options(tok, 0.15, false); });
    EXPECT_TRUE(contains(msg, "5 tokens")) << msg;
    EXPECT_TRUE(contains(msg, "\"[MASK]\"") && contains(msg, "\"<mask>\"")) << msg;
    const ListTokenizer with_mask({"[PAD]", "hello", "[MASK]", "##s"});
    const MaskingOptions o = masking_options(with_mask, 0.15, true);
    EXPECT_EQ(o.mask_id, 2);
    EXPECT_EQ(o.continues_word, (std::vector<bool>{false, false, false, true}));
}

// ---- end to end ------------------------------------------------------------------------------------------

TEST_F(Corpus, ReadSplitPackAndMaskWholeWordsWithBert) {
    MEFT_REQUIRE_DIR(bert_tokenizer(), "the corpus pipeline is not tested on the real BERT tokenizer");
    const auto tok = load_tokenizer(bert_tokenizer());
    std::string text;
    for (int i = 0; i < 40; ++i)
        text += "Document " + std::to_string(i) + " talks about unbelievable tokenization\nof hyphenated-words.\n\n";
    const auto docs = read_corpus({CorpusSource{write("c.txt", text)}});
    ASSERT_EQ(docs.size(), 40u);
    const CorpusSplit split = split_documents(docs, 0.1, 7);
    EXPECT_EQ(split.held_out.size(), 4u);
    const auto blocks = pack_blocks(*tok, split.train, 64);
    const MaskingOptions o = masking_options(*tok, 0.15, true);
    long selected = 0;
    for (std::uint32_t b = 0; b < blocks.size(); ++b) {
        auto ids = blocks[b];
        std::vector<std::int32_t> labels;
        mask_tokens(o, philox_key(3, 0, 0), b, ids, labels);
        for (std::size_t i = 1; i < ids.size(); ++i) {
            const bool continuation = tok->token(blocks[b][i]).rfind("##", 0) == 0;
            if (continuation) {
                EXPECT_EQ(labels[i] != kIgnoreLabel, labels[i - 1] != kIgnoreLabel) << "block " << b << " at " << i;
            }
            selected += labels[i] != kIgnoreLabel;
        }
    }
    EXPECT_GT(selected, 0);
}
