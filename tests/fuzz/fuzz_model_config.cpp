// SPDX-License-Identifier: GPL-3.0-or-later
// fuzz_model_config.cpp — libFuzzer target for a model folder's config.json (model/config.h).
// Input: the text of config.json. load_model_config reads it as every command does; a config it
// accepts must also survive the round trip meft makes when it saves a model: to_json, then
// from_json again, accepted and equal in what the engine uses.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace meft;
    const auto dir = fuzz::fresh_dir("model-config");
    fuzz::write_file(dir / "config.json", std::string_view(reinterpret_cast<const char*>(data), size));
    fuzz::expect_only_meft_errors("load_model_config", [&] {
        const ModelConfig c = load_model_config(dir);
        // The engine accepts up to 2^20 labels; their id2label/label2id tables make a config.json of
        // tens of MB, which the round trip below parses in well under a second in a release build
        // but in over 10 s under the fuzzer's instrumentation. Large tables round-trip like small ones.
        if (c.num_labels() > 4096) return;
        ModelConfig back;
        try {
            back = ModelConfig::from_json(nlohmann::json::parse(c.to_json().dump()), "round trip");
        } catch (const Error& e) {
            std::fprintf(stderr, "\n*** a config that loads does not load again after to_json: %s\n", e.what());
            std::abort();
        }
        fuzz::require(back.arch == c.arch && back.vocab_size == c.vocab_size && back.hidden_size == c.hidden_size &&
                          back.num_layers == c.num_layers && back.decoder_layers == c.decoder_layers &&
                          back.num_heads == c.num_heads && back.intermediate_size == c.intermediate_size &&
                          back.labels == c.labels && back.multiple_choice == c.multiple_choice,
                      "to_json/from_json changed the model's shape or labels");
    });
    return 0;
}
