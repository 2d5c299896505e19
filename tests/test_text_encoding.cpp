// How user text enters (data/text_encoding.h): strict UTF-8 with a message naming line and byte
// for every kind of invalid sequence, Latin-1 transcoded byte for byte, and predict's JSON lines
// (data/jsonl_examples.h) checked before they are parsed.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "data/jsonl_examples.h"
#include "data/text_encoding.h"
#include "data/tokenizer.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace meft;
using meft::test::error_of;

namespace {

// "café crème brûlée" in UTF-8 and in Latin-1 (é e9, è e8, û fb).
const std::string kUtf8 = "caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9" "e";
const std::string kLatin1 = "caf\xE9 cr\xE8me br\xFBl\xE9" "e";

fs::path bert_tokenizer() { return fs::path(MEFT_SHARED_DIR) / "models" / "bert-tiny-tokenizer"; }

// The error decode_line gives for `bytes` on line 7 of f.tsv, with the default advice.
std::string line_error(const std::string& bytes) { return error_of([&] { decode_line(bytes, {}, "f.tsv:7"); }); }

const std::string kAdvice = "; the file may be Latin-1 — set task.encoding to \"latin-1\" to read it as such";

class JsonlFixture : public meft::test::TempDirTest {
protected:
    fs::path write(const std::string& name, const std::string& bytes) {
        meft::test::write_bytes(dir_ / name, bytes);
        return dir_ / name;
    }
};

}  // namespace

TEST(Utf8, ValidTextPassesUnchanged) {
    for (const std::string& s :
         {std::string(), std::string("plain ASCII\t\x7F"), kUtf8, std::string("\xE2\x82\xAC 5"),  // €
          std::string("\xF0\x9F\x98\x80"),                                                      // U+1F600, 4 bytes
          std::string("\xC2\x80 \xDF\xBF"),        // the first and last 2-byte code points
          std::string("\xE0\xA0\x80 \xED\x9F\xBF"),  // U+0800 and U+D7FF, around the surrogates
          std::string("\xEE\x80\x80 \xEF\xBF\xBF"),  // U+E000 and U+FFFF (a noncharacter is still UTF-8)
          std::string("\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF"),  // U+10000 and U+10FFFF, the last code point
          std::string("a\0b", 3)}) {                          // NUL is U+0000
        EXPECT_FALSE(find_invalid_utf8(s).has_value()) << s;
        EXPECT_EQ(decode_line(s, {}, "x"), s);
    }
}

TEST(Utf8, EveryKindOfInvalidSequenceNamesItsByte) {
    // The Latin-1 line of issue 17: é (e9) followed by a space.
    EXPECT_EQ(line_error(kLatin1),
              "f.tsv:7: byte 4: not valid UTF-8 (e9 20: e9 starts a 3-byte sequence, but 20 is not a continuation "
              "byte (80..bf))" + kAdvice);
    struct Case {
        std::string bytes;
        std::string message;  // without "f.tsv:7: " and the advice
    };
    const Case cases[] = {
        // truncated sequences: mid-line and at the end of the line
        {"ab\xC3", "byte 3: not valid UTF-8 (c3: c3 starts a 2-byte sequence, but the line ends)"},
        {"\xE2\x82", "byte 1: not valid UTF-8 (e2 82: e2 starts a 3-byte sequence, but the line ends)"},
        {"x\xF0\x9F\x98!", "byte 2: not valid UTF-8 (f0 9f 98 21: f0 starts a 4-byte sequence, but 21 is not a "
                           "continuation byte (80..bf))"},
        // a continuation byte on its own
        {"a\x80z", "byte 2: not valid UTF-8 (80: a continuation byte with no lead byte before it)"},
        {"\xC3\xA9\xA9", "byte 3: not valid UTF-8 (a9: a continuation byte with no lead byte before it)"},
        // overlong encodings of '/' (U+002F) in 2, 3 and 4 bytes, and of U+07FF in 3
        {"\xC0\xAF", "byte 1: not valid UTF-8 (c0 af: an overlong encoding of U+002F)"},
        {"\xE0\x80\xAF", "byte 1: not valid UTF-8 (e0 80 af: an overlong encoding of U+002F)"},
        {"\xF0\x80\x80\xAF", "byte 1: not valid UTF-8 (f0 80 80 af: an overlong encoding of U+002F)"},
        {"\xE0\x9F\xBF", "byte 1: not valid UTF-8 (e0 9f bf: an overlong encoding of U+07FF)"},
        {"\xC1", "byte 1: not valid UTF-8 (c1: c1 never occurs in UTF-8)"},
        // UTF-16 surrogates
        {"\xED\xA0\x80", "byte 1: not valid UTF-8 (ed a0 80: the UTF-16 surrogate U+D800, which UTF-8 does not encode)"},
        {"\xED\xBF\xBF", "byte 1: not valid UTF-8 (ed bf bf: the UTF-16 surrogate U+DFFF, which UTF-8 does not encode)"},
        // above U+10FFFF
        {"\xF4\x90\x80\x80", "byte 1: not valid UTF-8 (f4 90 80 80: U+110000, above the last code point U+10FFFF)"},
        {"\xF7\xBF\xBF\xBF", "byte 1: not valid UTF-8 (f7: f7 never occurs in UTF-8)"},
        {"\xFF", "byte 1: not valid UTF-8 (ff: ff never occurs in UTF-8)"},
    };
    for (const Case& c : cases) EXPECT_EQ(line_error(c.bytes), "f.tsv:7: " + c.message + kAdvice);

    // The byte counts what the caller removed before the text (a byte-order mark).
    const std::string e = error_of([&] { decode_line("x\xE9", {}, "f:1", 3); });
    EXPECT_EQ(e.rfind("f:1: byte 5: ", 0), 0u) << e;
    // The advice is the caller's.
    TextDecoding cli;
    cli.advice = "pass --encoding latin-1";
    EXPECT_EQ(error_of([&] { decode_line("\xE9", cli, "--text"); }),
              "--text: byte 1: not valid UTF-8 (e9: e9 starts a 3-byte sequence, but the line ends); pass --encoding latin-1");
}

TEST(Utf8, WholeFilesNameTheLine) {
    const std::string text = "ok\r\n\xEF\xBB\xBF" "fine\nstill fine\r\nbad " + kLatin1 + "\r\nnot reached \xFF\n";
    EXPECT_EQ(error_of([&] { decode_text(text, {}, "d.jsonl"); }),
              "d.jsonl:4: byte 8: not valid UTF-8 (e9 20: e9 starts a 3-byte sequence, but 20 is not a continuation "
              "byte (80..bf))" + kAdvice);
    EXPECT_EQ(decode_text("a\nb\r\n" + kUtf8, {}, "d"), "a\nb\r\n" + kUtf8);
    // A fault at the very end of a file without a final newline, and on a line of its own.
    EXPECT_EQ(error_of([&] { decode_text("a\n\xC3", {}, "d"); }).rfind("d:2: byte 1: ", 0), 0u);
}

TEST(Latin1, EveryByteIsItsCodePoint) {
    EXPECT_EQ(latin1_to_utf8(kLatin1), kUtf8);
    std::string all;
    for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
    const std::string u = latin1_to_utf8(all);
    EXPECT_FALSE(find_invalid_utf8(u).has_value());
    EXPECT_EQ(u.size(), 128u + 2u * 128u);
    EXPECT_EQ(u.substr(0, 128), all.substr(0, 128));             // ASCII unchanged
    EXPECT_EQ(u.substr(128, 2), "\xC2\x80");                      // U+0080, a C1 control (not Windows-1252's €)
    EXPECT_EQ(u.substr(u.size() - 2), "\xC3\xBF");                // ÿ U+00FF
    TextDecoding latin1;
    latin1.encoding = TextEncoding::latin1;
    EXPECT_EQ(decode_line(kLatin1, latin1, "x"), kUtf8);
    EXPECT_EQ(decode_text("a\n" + kLatin1 + "\n", latin1, "x"), "a\n" + kUtf8 + "\n");
    EXPECT_EQ(decode_line(kUtf8, latin1, "x"), latin1_to_utf8(kUtf8));  // asked for, so UTF-8 bytes are Latin-1 too
}

TEST(Latin1, NamesAreExact) {
    EXPECT_EQ(text_encoding_from_name("utf-8"), TextEncoding::utf8);
    EXPECT_EQ(text_encoding_from_name("latin-1"), TextEncoding::latin1);
    EXPECT_FALSE(text_encoding_from_name("latin1").has_value());
    EXPECT_FALSE(text_encoding_from_name("UTF-8").has_value());
    EXPECT_STREQ(text_encoding_name(TextEncoding::latin1), "latin-1");
    EXPECT_STREQ(text_encoding_name(TextEncoding::utf8), "utf-8");
}

// meft predict's reader: a Latin-1 line is an error naming file, line and byte before the JSON
// parser sees it, whether the bad bytes are text or not; read as Latin-1, the line gives the ids of
// the UTF-8 file.
TEST_F(JsonlFixture, PredictLinesAreCheckedBeforeParsing) {
    const std::string line = "{\"text\": \"" + kLatin1 + "\"}";
    const fs::path bad = write("latin1.jsonl", "{\"input_ids\": [101, 102]}\n" + line + "\n");
    std::string e = error_of([&] { read_jsonl_examples(bad); });
    EXPECT_EQ(e, bad.string() + ":2: byte " + std::to_string(line.find('\xE9') + 1) +
                     ": not valid UTF-8 (e9 20: e9 starts a 3-byte sequence, but 20 is not a continuation byte "
                     "(80..bf))" + kAdvice);
    EXPECT_EQ(e.find("parse error"), std::string::npos) << "the JSON parser's message leaked: " << e;
    // Bytes outside any text (an id) are checked too; nlohmann would have given its own message.
    const std::string id_line = "{\"input_ids\": [101, 102], \"id\": \"\xED\xA0\x80\"}";
    const fs::path id = write("id.jsonl", id_line + "\n");
    e = error_of([&] { read_jsonl_examples(id); });
    EXPECT_NE(e.find(id.string() + ":1: byte " + std::to_string(id_line.find('\xED') + 1) +
                     ": not valid UTF-8 (ed a0 80: the UTF-16 surrogate U+D800"),
              std::string::npos)
        << e;

    MEFT_REQUIRE_DIR(bert_tokenizer(), "Latin-1 lines are not tokenized");
    const auto tok = load_tokenizer(bert_tokenizer());
    const fs::path utf8 = write("utf8.jsonl", "{\"text\": \"" + kUtf8 + "\", \"text_pair\": \"" + kUtf8 + "\"}\n");
    const fs::path latin1 = write("l1.jsonl", "{\"text\": \"" + kLatin1 + "\", \"text_pair\": \"" + kLatin1 + "\"}\n");
    TextDecoding as_latin1;
    as_latin1.encoding = TextEncoding::latin1;
    const auto u = read_jsonl_examples(utf8, tok.get(), 64);
    const auto l = read_jsonl_examples(latin1, tok.get(), 64, as_latin1);
    ASSERT_EQ(u.size(), 1u);
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].input_ids, u[0].input_ids);
    EXPECT_EQ(l[0].token_type_ids, u[0].token_type_ids);
    // ... which are the accented words, not what the raw Latin-1 bytes gave before they were checked
    // (the tokenizer drops bytes that are not UTF-8: "caf cr ##me br ##le").
    EXPECT_EQ(u[0].input_ids, tok->encode(kUtf8, std::optional<std::string_view>(kUtf8), 64).input_ids);
    EXPECT_NE(u[0].input_ids, tok->encode(kLatin1, std::optional<std::string_view>(kLatin1), 64).input_ids);
}
