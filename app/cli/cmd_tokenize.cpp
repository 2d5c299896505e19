// meft tokenize — token ids of a text (or pair), or of a GLUE split, as JSON lines.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "data/glue.h"
#include "data/text_encoding.h"
#include "data/tokenizer.h"

namespace meft::cli {

namespace {
struct TokenizeArgs {
    std::string tokenizer, text, pair, data, task, split = "dev", encoding = "utf-8";
    int max_length = 512;
    bool tokens = false;
};

void print(const Tokenizer& tok, const Encoding& e, const TextExample* x, bool with_tokens) {
    nlohmann::json j;
    j["input_ids"] = e.input_ids;
    j["token_type_ids"] = e.token_type_ids;
    j["attention_mask"] = e.attention_mask;
    if (with_tokens) {
        std::vector<std::string> t;
        for (std::int32_t id : e.input_ids) t.push_back(tok.token(id));
        j["tokens"] = t;
    }
    if (x && x->label >= 0) j["label"] = x->label;
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

int run(const TokenizeArgs& a) {
    const auto tok = load_tokenizer(a.tokenizer);
    TextDecoding decoding;
    decoding.encoding = *text_encoding_from_name(a.encoding);  // CLI11 checked the name
    if (!a.text.empty() || a.data.empty()) {
        if (a.text.empty()) throw Error("give --text (and optionally --pair), or --data with --task");
        // Arguments are bytes too: a Latin-1 terminal's "café" is not UTF-8.
        decoding.advice = "the text may be Latin-1 — pass --encoding latin-1 to read it as such";
        const std::string text = decode_line(a.text, decoding, "--text");
        const std::string pair = decode_line(a.pair, decoding, "--pair");
        const std::optional<std::string_view> b = a.pair.empty() ? std::nullopt : std::optional<std::string_view>(pair);
        print(*tok, tok->encode(text, b, a.max_length), nullptr, a.tokens);
        return 0;
    }
    if (a.task.empty()) throw Error("--data needs --task (a GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli)");
    // --data is the task's folder (with --split) or one of its files (the split is its name).
    std::filesystem::path dir = a.data;
    std::string split = a.split;
    if (std::filesystem::is_regular_file(dir)) {
        split = dir.stem().string();
        dir = dir.parent_path();
    }
    decoding.advice = "the file may be Latin-1 — pass --encoding latin-1 to read it as such";
    const GlueSplit s = load_glue(a.task, dir, split, decoding);
    for (const std::string& w : s.warnings) std::cerr << "notice: " << w << "\n";
    for (const TextExample& x : s.examples) {
        const std::optional<std::string_view> b = x.text_b ? std::optional<std::string_view>(*x.text_b) : std::nullopt;
        print(*tok, tok->encode(x.text_a, b, a.max_length), &x, a.tokens);
    }
    return 0;
}
}  // namespace

Runner add_tokenize(CLI::App& app) {
    auto a = std::make_shared<TokenizeArgs>();
    app.add_option("--tokenizer", a->tokenizer, "tokenizer folder (vocab.txt | vocab.json + merges.txt | tokenizer.json)")
        ->required()
        ->check(CLI::ExistingDirectory);
    app.add_option("--text", a->text, "a text to encode");
    app.add_option("--pair", a->pair, "the second text of a pair");
    app.add_option("--data", a->data, "a GLUE task folder or one of its .tsv files")->check(CLI::ExistingPath);
    app.add_option("--task", a->task, "the GLUE task of --data");
    app.add_option("--split", a->split, "split of a --data folder")->capture_default_str();
    app.add_option("--max-length", a->max_length, "truncate longest-first to this many tokens (0: no limit)")
        ->check(CLI::Range(0, 1 << 20))
        ->capture_default_str();
    app.add_flag("--tokens", a->tokens, "also print the token strings");
    app.add_option("--encoding", a->encoding, "how --text, --pair and --data are read: utf-8 (checked) or latin-1")
        ->check(CLI::IsMember({"utf-8", "latin-1"}))
        ->capture_default_str();
    return [a] { return run(*a); };
}

}  // namespace meft::cli
