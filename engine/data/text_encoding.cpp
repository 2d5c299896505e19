#include "data/text_encoding.h"

#include <cstdio>

#include <utf8proc.h>

#include "core/error.h"

namespace meft {

namespace {

std::string hex_byte(unsigned char b) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", b);
    return buf;
}

std::string code_point(long cp) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04lX", cp);
    return buf;
}

bool continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// What is wrong with the sequence starting at s[i], which utf8proc_iterate rejected.
Utf8Fault describe(std::string_view s, std::size_t i) {
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char lead = at(0);
    Utf8Fault f;
    f.offset = i;
    const auto show = [&](std::size_t n) {
        for (std::size_t k = 0; k < n && i + k < s.size(); ++k) {
            if (k) f.bytes += ' ';
            f.bytes += hex_byte(at(k));
        }
    };
    if (continuation(lead)) {
        show(1);
        f.why = "a continuation byte with no lead byte before it";
        return f;
    }
    if (lead >= 0xF5 || lead == 0xC0 || lead == 0xC1) {
        const bool overlong = lead < 0xC2 && i + 1 < s.size() && continuation(at(1));
        show(overlong ? 2 : 1);
        f.why = overlong ? "an overlong encoding of " + code_point(((lead & 0x1F) << 6) | (at(1) & 0x3F))
                         : hex_byte(lead) + " never occurs in UTF-8";
        return f;
    }
    const std::size_t need = lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    std::size_t have = 1;
    while (have < need && i + have < s.size() && continuation(at(have))) ++have;
    const std::string starts = hex_byte(lead) + " starts a " + std::to_string(need) + "-byte sequence, but ";
    if (have < need) {
        if (i + have < s.size()) {
            show(have + 1);
            f.why = starts + hex_byte(at(have)) + " is not a continuation byte (80..bf)";
        } else {
            show(have);
            f.why = starts + "the line ends";
        }
        return f;
    }
    show(need);
    long cp = lead & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
    for (std::size_t k = 1; k < need; ++k) cp = (cp << 6) | (at(k) & 0x3F);
    const long least = need == 2 ? 0x80 : need == 3 ? 0x800 : 0x10000;
    if (cp < least) f.why = "an overlong encoding of " + code_point(cp);
    else if (cp >= 0xD800 && cp <= 0xDFFF) f.why = "the UTF-16 surrogate " + code_point(cp) + ", which UTF-8 does not encode";
    else if (cp > 0x10FFFF) f.why = code_point(cp) + ", above the last code point U+10FFFF";
    else f.why = "rejected by utf8proc";  // not reached: the cases above are all utf8proc rejects
    return f;
}

std::string fault_message(const Utf8Fault& f, const std::string& where, std::size_t first_byte, const TextDecoding& d) {
    return where + ": byte " + std::to_string(first_byte + f.offset + 1) + ": not valid UTF-8 (" + f.bytes + ": " + f.why +
           ")" + (d.advice.empty() ? "" : "; " + d.advice);
}

}  // namespace

const char* text_encoding_name(TextEncoding e) { return e == TextEncoding::latin1 ? "latin-1" : "utf-8"; }

std::optional<TextEncoding> text_encoding_from_name(std::string_view name) {
    if (name == "utf-8") return TextEncoding::utf8;
    if (name == "latin-1") return TextEncoding::latin1;
    return std::nullopt;
}

std::optional<Utf8Fault> find_invalid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
    std::size_t i = 0;
    while (i < s.size()) {
        if (p[i] < 0x80) {  // ASCII, most of every file
            ++i;
            continue;
        }
        utf8proc_int32_t cp = -1;
        const utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
        if (n <= 0 || cp < 0) return describe(s, i);
        i += static_cast<std::size_t>(n);
    }
    return std::nullopt;
}

std::string latin1_to_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size() + s.size() / 8);
    for (const char c : s) {
        const auto b = static_cast<unsigned char>(c);
        if (b < 0x80) {
            out.push_back(c);
            continue;
        }
        utf8proc_uint8_t buf[4];
        const utf8proc_ssize_t n = utf8proc_encode_char(b, buf);
        out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
    }
    return out;
}

std::string decode_line(std::string_view s, const TextDecoding& d, const std::string& where, std::size_t first_byte) {
    if (d.encoding == TextEncoding::latin1) return latin1_to_utf8(s);
    if (const auto f = find_invalid_utf8(s)) throw Error(fault_message(*f, where, first_byte, d));
    return std::string(s);
}

std::string decode_text(std::string text, const TextDecoding& d, const std::string& file) {
    if (d.encoding == TextEncoding::latin1) return latin1_to_utf8(text);
    std::size_t start = 0;
    for (long line = 1; start < text.size(); ++line) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string_view l = std::string_view(text).substr(start, end - start);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        if (const auto f = find_invalid_utf8(l)) throw Error(fault_message(*f, file + ":" + std::to_string(line), 0, d));
        start = end + 1;
    }
    return text;
}

}  // namespace meft
