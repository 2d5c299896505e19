#include "data/text_corpus.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/text_util.h"

namespace meft {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- reading ---------------------------------------------------------------------------------------------

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

bool is_jsonl(const fs::path& file) {
    std::string ext = file.extension().string();
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return ext == ".jsonl";
}

// A whole file as UTF-8 text. The NUL check comes first: NUL is valid UTF-8, so without it a binary
// file (or UTF-16 text, every other byte NUL for ASCII) would be read as text and trained on.
std::string read_text_file(const fs::path& file, const TextDecoding& decoding) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot open");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error(file.string() + ": read error");
    std::string text = ss.str();
    if (const std::size_t nul = text.find('\0'); nul != std::string::npos) {
        const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n');
        throw Error(file.string() + ":" + std::to_string(line) + ": a NUL byte at byte offset " + std::to_string(nul) +
                    " of the file: this is a binary file, not text (UTF-16 text has NUL bytes too: convert it to UTF-8)");
    }
    const char* bom = "\xEF\xBB\xBF";
    if (decoding.encoding == TextEncoding::latin1 && text.rfind(bom, 0) == 0) text.erase(0, 3);
    text = decode_text(std::move(text), decoding, file.string());  // UTF-8: byte counts include a BOM
    if (text.rfind(bom, 0) == 0) text.erase(0, 3);
    if (text.rfind("version https://git-lfs.github.com/spec/", 0) == 0)
        throw Error(file.string() + ":1: this is a Git LFS pointer, not the text (fetch the real file with git lfs)");
    return text;
}

void read_plain_documents(std::string_view text, std::vector<std::string>& out) {
    std::string doc;
    const auto flush = [&] {
        if (!doc.empty()) out.push_back(std::move(doc));
        doc.clear();
    };
    for (const std::string_view raw : split_lines(text)) {
        const std::string_view line = trim(raw);
        if (line.empty()) {
            flush();
            continue;
        }
        if (!doc.empty()) doc += ' ';
        doc += line;
    }
    flush();
}

void read_jsonl_documents(std::string_view text, const fs::path& file, const std::string& field,
                          std::vector<std::string>& out) {
    long lineno = 0;
    for (const std::string_view line : split_lines(text)) {
        ++lineno;
        if (trim(line).empty()) continue;
        const std::string where = file.string() + ":" + std::to_string(lineno);
        json j;
        try {
            j = json::parse(line.begin(), line.end());
        } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
            throw Error(where + ": not valid JSON (" + std::string(e.what()) + ")");
        }
        if (!j.is_object()) throw Error(where + ": expected a JSON object, got " + j.type_name());
        const auto it = j.find(field);
        if (it == j.end()) throw Error(where + ": the object has no key '" + field + "' (the corpus's text field)");
        if (!it->is_string())
            throw Error(where + ": key '" + field + "' must be a string, got " + it->type_name() + " " + it->dump());
        std::string doc = it->get<std::string>();
        if (!trim(doc).empty()) out.push_back(std::move(doc));
    }
}

void read_file_documents(const fs::path& file, const CorpusSource& source, const TextDecoding& decoding,
                         std::vector<std::string>& out) {
    const std::string text = read_text_file(file, decoding);
    if (is_jsonl(file)) read_jsonl_documents(text, file, source.text_field, out);
    else read_plain_documents(text, out);
}

bool hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

// Every regular file under `dir` in path order, hidden names (and what hidden folders hold) left out.
std::vector<fs::path> files_under(const fs::path& dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        if (hidden(it->path())) {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        if (it->is_regular_file(ec)) files.push_back(it->path());
    }
    if (ec) throw Error(dir.string() + ": cannot list the folder (" + ec.message() + ")");
    std::sort(files.begin(), files.end());
    return files;
}

// ---- masking ---------------------------------------------------------------------------------------------

const std::string kBpeSpace = "\xC4\xA0";  // "Ġ": byte-level BPE's mark of a token that starts a word

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

void check_masking_options(const MaskingOptions& o) {
    const std::string vocab = std::to_string(o.vocab_size);
    if (o.vocab_size <= 0) throw Error("masking: the vocabulary size is " + vocab + ", expected at least 1");
    if (!(o.probability >= 0.0 && o.probability <= 1.0))
        throw Error("masking: the probability is " + std::to_string(o.probability) + ", expected 0..1");
    if (o.mask_id < 0 || o.mask_id >= o.vocab_size)
        throw Error("masking: the mask token id " + std::to_string(o.mask_id) + " is outside the vocabulary (ids 0.." +
                    std::to_string(o.vocab_size - 1) + ")");
    if (o.special.size() != static_cast<std::size_t>(o.vocab_size))
        throw Error("masking: the special-token table has " + std::to_string(o.special.size()) +
                    " entries, the vocabulary " + vocab);
    if ((o.whole_word || !o.continues_word.empty()) && o.continues_word.size() != static_cast<std::size_t>(o.vocab_size))
        throw Error("masking: the word-continuation table has " + std::to_string(o.continues_word.size()) +
                    " entries, the vocabulary " + vocab);
}

}  // namespace

std::vector<std::string> read_corpus(const std::vector<CorpusSource>& sources, const TextDecoding& decoding) {
    if (sources.empty()) throw Error("corpus: no sources given (expected text or .jsonl files, or folders of them)");
    std::vector<std::string> docs;
    std::vector<std::string> read;  // for the message when the corpus turns out empty
    for (const CorpusSource& s : sources) {
        if (s.text_field.empty()) throw Error(s.path.string() + ": the corpus's text field is empty (the default is \"text\")");
        std::error_code ec;
        const fs::file_status st = fs::status(s.path, ec);
        if (!fs::exists(st)) throw Error(s.path.string() + ": corpus source does not exist");
        if (fs::is_directory(st)) {
            const std::vector<fs::path> files = files_under(s.path);
            if (files.empty())
                throw Error(s.path.string() + ": the corpus folder has no files (names starting with '.' are skipped)");
            for (const fs::path& f : files) read_file_documents(f, s, decoding, docs);
            read.push_back(s.path.string() + " (" + std::to_string(files.size()) + (files.size() == 1 ? " file)" : " files)"));
        } else if (fs::is_regular_file(st)) {
            read_file_documents(s.path, s, decoding, docs);
            read.push_back(s.path.string());
        } else {
            throw Error(s.path.string() + ": corpus source is neither a file nor a folder");
        }
    }
    if (docs.empty())
        throw Error("the corpus has no text: no line that is not blank (nor a .jsonl text that is not blank) in " +
                    join(read));
    return docs;
}

std::vector<std::vector<std::int32_t>> pack_blocks(const Tokenizer& tok, const std::vector<std::string>& documents,
                                                   int block_tokens) {
    if (block_tokens < 2)
        throw Error("corpus: the block length is " + std::to_string(block_tokens) + " tokens, expected at least 2");
    const auto block = static_cast<std::size_t>(block_tokens);
    std::vector<std::vector<std::int32_t>> blocks;
    std::vector<std::int32_t> current;
    current.reserve(block);
    std::uint64_t total = 0;
    for (const std::string& doc : documents) {
        const std::vector<std::int32_t> ids = tok.encode(doc, std::nullopt, 0).input_ids;
        total += ids.size();
        for (std::size_t i = 0; i < ids.size();) {
            const std::size_t take = std::min(block - current.size(), ids.size() - i);
            current.insert(current.end(), ids.begin() + static_cast<std::ptrdiff_t>(i),
                           ids.begin() + static_cast<std::ptrdiff_t>(i + take));
            i += take;
            if (current.size() == block) {
                blocks.push_back(std::move(current));
                current.clear();
                current.reserve(block);
            }
        }
    }
    if (blocks.empty())
        throw Error("corpus: its " + std::to_string(documents.size()) + " document(s) encode to " + std::to_string(total) +
                    " tokens (special tokens included), fewer than one block of " + std::to_string(block_tokens) +
                    " tokens: add text or shorten the block");
    return blocks;  // `current` (fewer than block_tokens ids) is dropped, as run_mlm's group_texts drops it
}

CorpusSplit split_documents(std::vector<std::string> docs, double held_out_share, std::uint64_t seed) {
    if (!(held_out_share >= 0.0 && held_out_share <= 0.5))
        throw Error("corpus: the held-out share is " + std::to_string(held_out_share) + ", expected 0..0.5");
    const std::size_t n = docs.size();
    if (held_out_share > 0.0 && n < 2)
        throw Error("corpus: " + std::to_string(n) + " document(s) cannot be split into training and held-out text " +
                    "(set the held-out share to 0, or give a corpus of at least 2 documents)");
    // Fisher–Yates with unbiased bounded draws written out: std::uniform_int_distribution's
    // algorithm differs between standard libraries, and the split must not.
    std::mt19937_64 rng(seed);
    for (std::size_t i = n; i > 1; --i) {
        const std::uint64_t bound = i;                           // j in [0, i - 1]
        const std::uint64_t reject_below = (0 - bound) % bound;  // 2^64 mod bound: draws below it bias the remainder
        std::uint64_t r = rng();
        while (r < reject_below) r = rng();
        std::swap(docs[i - 1], docs[static_cast<std::size_t>(r % bound)]);
    }
    std::size_t held = static_cast<std::size_t>(std::llround(held_out_share * static_cast<double>(n)));
    if (held_out_share > 0.0) held = std::max<std::size_t>(held, 1);
    MEFT_CHECK(held < n || n == 0, "a held-out share of at most 0.5 leaves training documents");
    CorpusSplit out;
    out.held_out.assign(std::make_move_iterator(docs.begin()), std::make_move_iterator(docs.begin() + static_cast<std::ptrdiff_t>(held)));
    out.train.assign(std::make_move_iterator(docs.begin() + static_cast<std::ptrdiff_t>(held)), std::make_move_iterator(docs.end()));
    return out;
}

void mask_tokens(const MaskingOptions& o, const PhiloxKey& key, std::uint32_t example, std::vector<std::int32_t>& ids,
                 std::vector<std::int32_t>& labels) {
    check_masking_options(o);
    // The special ids in increasing order: the k-th non-special id is k moved past each of them
    // that is not above it — no table of the (tens of thousands of) others per block.
    std::vector<std::int32_t> specials;
    for (std::int32_t id = 0; id < o.vocab_size; ++id)
        if (o.special[static_cast<std::size_t>(id)]) specials.push_back(id);
    const auto n_plain = static_cast<std::uint64_t>(o.vocab_size) - specials.size();
    if (n_plain == 0) throw Error("masking: every id of the vocabulary is special: no token can be masked");
    for (std::size_t i = 0; i < ids.size(); ++i)
        if (ids[i] < 0 || ids[i] >= o.vocab_size)
            throw Error("masking: token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                        " is outside the vocabulary (ids 0.." + std::to_string(o.vocab_size - 1) + ")");

    const std::uint64_t select_below = drop_threshold(o.probability);
    const std::uint64_t mask_below = drop_threshold(0.8), random_below = drop_threshold(0.9);
    const auto special = [&](std::int32_t id) { return o.special[static_cast<std::size_t>(id)]; };

    labels.assign(ids.size(), kIgnoreLabel);
    // whole_word: whether the word position i belongs to was selected, and whether the previous
    // original token can be continued (ids[i - 1] may already be [MASK], itself special).
    bool word_selected = false, after_word = false;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::int32_t id = ids[i];
        const PhiloxWords w = philox_block(key, example, static_cast<std::uint32_t>(i));
        if (special(id)) {
            after_word = false;
            continue;
        }
        bool selected = w[0] < select_below;
        if (o.whole_word) {
            if (!after_word || !o.continues_word[static_cast<std::size_t>(id)]) word_selected = selected;
            selected = word_selected;
            after_word = true;
        }
        if (!selected) continue;
        labels[i] = id;
        if (w[1] < mask_below) {
            ids[i] = o.mask_id;
        } else if (w[1] < random_below) {
            std::int32_t r = static_cast<std::int32_t>((static_cast<std::uint64_t>(w[2]) * n_plain) >> 32);
            for (const std::int32_t s : specials) {
                if (s > r) break;
                ++r;
            }
            ids[i] = r;
        }  // else: kept, but still predicted
    }
}

MaskingOptions masking_options(const Tokenizer& tok, double probability, bool whole_word) {
    static const std::vector<std::string> kSpecial = {"[CLS]", "[SEP]", "[PAD]", "[MASK]",
                                                      "<s>",   "</s>",  "<pad>", "<mask>"};
    MaskingOptions o;
    o.probability = probability;
    o.whole_word = whole_word;
    o.vocab_size = tok.vocab_size();
    const auto n = static_cast<std::size_t>(std::max(o.vocab_size, 0));
    std::vector<std::string> tokens(n);
    bool bpe = false;
    for (std::size_t id = 0; id < n; ++id) {
        tokens[id] = tok.token(static_cast<std::int32_t>(id));
        bpe = bpe || starts_with(tokens[id], kBpeSpace);
    }
    o.special.assign(n, false);
    o.continues_word.assign(n, false);
    for (std::size_t id = 0; id < n; ++id) {
        const std::string& t = tokens[id];
        o.special[id] = std::find(kSpecial.begin(), kSpecial.end(), t) != kSpecial.end();
        if (o.mask_id < 0 && (t == "[MASK]" || t == "<mask>")) o.mask_id = static_cast<std::int32_t>(id);
        o.continues_word[id] = bpe ? !o.special[id] && !starts_with(t, kBpeSpace) : starts_with(t, "##");
    }
    if (o.mask_id < 0)
        throw Error("masking: the tokenizer's vocabulary (" + std::to_string(n) +
                    " tokens) has no mask token, neither \"[MASK]\" nor \"<mask>\": masked-language-model "
                    "pre-training needs one");
    return o;
}

}  // namespace meft
