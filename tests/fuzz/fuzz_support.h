// SPDX-License-Identifier: GPL-3.0-or-later
// fuzz_support.h — what every libFuzzer target in tests/fuzz shares:
//   * a per-process scratch folder (under /dev/shm when it is writable) for the parsers that only
//     take a path, emptied for every input and removed when the process exits;
//   * splitting one fuzz input into several files at kSeparator (0xFF, a byte that never occurs
//     in UTF-8 text), for inputs made of more than one file (vocab + merges, a task folder);
//   * the rule every target applies: meft::Error is the expected answer to bad input; any other
//     exception is a finding, printed with its type and message, and aborts the run.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "core/error.h"
#include "data/wordpiece.h"

namespace meft::fuzz {

inline constexpr char kSeparator = '\xff';

// The process's scratch folder, e.g. /dev/shm/meft-fuzz-1234 (held by a leaked pointer so that it
// outlives static destructors; the atexit handler removes the folder).
inline const std::filesystem::path& scratch_root() {
    static const std::filesystem::path* root = [] {
        namespace fs = std::filesystem;
        std::error_code ec;
        fs::path base = "/dev/shm";
        if (!fs::is_directory(base, ec) || ::access(base.c_str(), W_OK) != 0) base = fs::temp_directory_path();
        auto* dir = new fs::path(base / ("meft-fuzz-" + std::to_string(::getpid())));
        fs::create_directories(*dir);
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(scratch_root(), ignored);
        });
        return dir;
    }();
    return *root;
}

// scratch_root()/name, created empty (anything an earlier input left there is removed).
inline std::filesystem::path fresh_dir(const std::string& name) {
    const std::filesystem::path dir = scratch_root() / name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

inline void write_file(const std::filesystem::path& file, std::string_view bytes) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        std::fprintf(stderr, "fuzz harness: cannot write %s\n", file.c_str());
        std::abort();
    }
}

// The input cut at every kSeparator into at most max_parts parts (the last part keeps any further
// separators). An input without a separator is one part.
inline std::vector<std::string_view> split_parts(const std::uint8_t* data, std::size_t size, std::size_t max_parts) {
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> parts;
    while (parts.size() + 1 < max_parts) {
        const std::size_t cut = rest.find(kSeparator);
        if (cut == std::string_view::npos) break;
        parts.push_back(rest.substr(0, cut));
        rest.remove_prefix(cut + 1);
    }
    parts.push_back(rest);
    return parts;
}

// Runs fn: a meft::Error is the parser's answer to bad input and ends fn quietly; any other
// exception is a finding. MEFT_FUZZ_VERBOSE=1 prints each meft::Error (to see what a seed reaches).
template <typename Fn> void expect_only_meft_errors(const char* what, Fn&& fn) {
    try {
        fn();
    } catch (const meft::Error& e) {
        if (std::getenv("MEFT_FUZZ_VERBOSE")) std::fprintf(stderr, "%s: meft::Error: %s\n", what, e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "\n*** %s: an exception other than meft::Error escaped: %s: %s\n", what, typeid(e).name(),
                     e.what());
        std::abort();
    } catch (...) {
        std::fprintf(stderr, "\n*** %s: a non-std exception escaped\n", what);
        std::abort();
    }
}

// An invariant the parser's result must keep (a finding when it does not).
inline void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "\n*** invariant violated: %s\n", what);
        std::abort();
    }
}

// A small BERT WordPiece tokenizer for the loaders that tokenize what they read (GLUE, predict).
inline const Tokenizer& small_tokenizer() {
    static const std::unique_ptr<WordPieceTokenizer> tok = [] {
        const std::filesystem::path dir = fresh_dir("small-tokenizer");
        write_file(dir / "vocab.txt",
                   "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nthe\nis\nnot\ngood\nbad\nmovie\nit\n##s\n##ing\n.\n,\n!\n?\n"
                   "'\n\"\n-\nfilm\nwas\nand\nof\nto\nin\nthat\n0\n1\n2\n");
        return WordPieceTokenizer::from_files(dir / "vocab.txt");
    }();
    return *tok;
}

// Every id a tokenizer produced must be one it knows (the model indexes its embedding with it).
inline void check_ids(const Tokenizer& tok, const std::vector<std::int32_t>& ids) {
    const int n = tok.vocab_size();
    for (std::int32_t id : ids) {
        require(id >= 0 && id < n, "a token id outside [0, vocab_size)");
        (void)tok.token(id);
    }
}

}  // namespace meft::fuzz
