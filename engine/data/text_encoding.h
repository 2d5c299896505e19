// text_encoding.h — how user text enters the workbench: UTF-8, checked strictly, or Latin-1,
// transcoded to UTF-8. Every reader of user data (GLUE TSV, QA files, predict's JSON lines,
// `meft tokenize`) goes through here before a tokenizer sees the text, so that bytes which are
// not UTF-8 are an error naming file, line and byte instead of being dropped in silence (a
// Latin-1 "café" would otherwise tokenize as "caf").
//
// Strict UTF-8 is RFC 3629: no overlong forms, no UTF-16 surrogates (U+D800..U+DFFF), nothing
// above U+10FFFF, no truncated sequences, no stray continuation bytes. utf8proc_iterate decides;
// the code here only describes what it rejected.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace meft {

enum class TextEncoding {
    utf8,    // "utf-8": checked strictly
    latin1,  // "latin-1" (ISO-8859-1): each byte is the code point U+0000..U+00FF
};

// "utf-8" | "latin-1"
const char* text_encoding_name(TextEncoding e);
// Exactly "utf-8" or "latin-1"; nullopt for anything else.
std::optional<TextEncoding> text_encoding_from_name(std::string_view name);
// For messages listing what is accepted.
inline constexpr const char* kTextEncodingNames = "\"utf-8\" or \"latin-1\"";

// How a reader decodes its bytes, and what it tells the user when they are not UTF-8.
struct TextDecoding {
    TextEncoding encoding = TextEncoding::utf8;
    // Ends the message of a UTF-8 error (after "; "): what the user can do about it.
    std::string advice = "the file may be Latin-1 — set task.encoding to \"latin-1\" to read it as such";
};

// The first byte sequence of `s` that is not strict UTF-8.
struct Utf8Fault {
    std::size_t offset = 0;  // of its first byte in `s`, from 0
    std::string bytes;       // the bytes shown in the message: the sequence as far as it went wrong
    std::string why;         // "e9 starts a 3-byte sequence, but 20 is not a continuation byte (80..bf)"
};
std::optional<Utf8Fault> find_invalid_utf8(std::string_view s);

// Latin-1 bytes as UTF-8 (never fails: every byte is a code point).
std::string latin1_to_utf8(std::string_view s);

// One line's bytes as UTF-8: checked (utf-8) or transcoded (latin-1). A fault throws Error
//   "<where>: byte <N>: not valid UTF-8 (<hex bytes>: <why>); <advice>"
// where N counts the line's bytes from 1, as columns do, and `first_byte` is how many bytes of the
// line precede `s` (a byte-order mark the caller removed).
std::string decode_line(std::string_view s, const TextDecoding& d, const std::string& where,
                        std::size_t first_byte = 0);

// A whole file's bytes as UTF-8, checked line by line so that a fault names "<file>:<line>" (lines
// end in "\n"; the byte count includes a byte-order mark).
std::string decode_text(std::string text, const TextDecoding& d, const std::string& file);

}  // namespace meft
