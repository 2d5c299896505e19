// meft-tokenize-bench — tokenizer throughput (sentences per second) on a GLUE split.
//
//   meft-tokenize-bench --data ../shared/data/glue/SST-2 --task sst2 --split train
//       --tokenizer ../shared/models/bert-tiny-tokenizer --tokenizer ../shared/models/roberta-base-tokenizer
// (one command line)
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "data/glue.h"
#include "data/tokenizer.h"

int main(int argc, char** argv) {
    CLI::App app{"meft-tokenize-bench: tokenizer throughput on a GLUE split"};
    std::string data, task = "sst2", split = "train";
    std::vector<std::string> tokenizers;
    int repeats = 3, max_length = 128;
    app.add_option("--data", data, "the GLUE task folder")->required()->check(CLI::ExistingDirectory);
    app.add_option("--task", task)->capture_default_str();
    app.add_option("--split", split)->capture_default_str();
    app.add_option("--tokenizer", tokenizers, "tokenizer folders (repeatable)")->required();
    app.add_option("--repeats", repeats, "timed passes; the best is reported")->capture_default_str();
    app.add_option("--max-length", max_length)->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    try {
        const meft::GlueSplit s = meft::load_glue(task, data, split);
        std::printf("<!-- meft-tokenize-bench: %s %s, %zu examples, encode() with special tokens, max_length %d, 1 thread -->\n",
                    task.c_str(), split.c_str(), s.examples.size(), max_length);
        std::printf("| tokenizer | examples | best s | sentences/s | tokens/s |\n|---|---|---|---|---|\n");
        for (const std::string& dir : tokenizers) {
            const auto tok = meft::load_tokenizer(dir);
            double best = 1e30;
            std::size_t tokens = 0;
            for (int r = 0; r < repeats; ++r) {
                tokens = 0;
                const auto t0 = std::chrono::steady_clock::now();
                for (const meft::TextExample& x : s.examples) {
                    const auto b = x.text_b ? std::optional<std::string_view>(*x.text_b) : std::nullopt;
                    tokens += tok->encode(x.text_a, b, max_length).input_ids.size();
                }
                best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            std::printf("| %s | %zu | %.3f | %.0f | %.0f |\n", std::filesystem::path(dir).filename().c_str(), s.examples.size(),
                        best, double(s.examples.size()) / best, double(tokens) / best);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
