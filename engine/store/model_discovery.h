// model_discovery.h — Hugging Face model folders a user may pick: those under configured search
// paths and those in the Hugging Face hub cache (~/.cache/huggingface/hub/models--ORG--NAME/
// snapshots/REVISION/). A folder counts when it has a config.json whose model_type this engine
// reads (bert, roberta) and weights (model.safetensors or a sharded index).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace meft {

struct FoundModel {
    std::filesystem::path path;
    std::string name;        // "bert-base-uncased", or "google/bert_uncased_L-2_H-128 (abc123)" from the cache
    std::string arch;        // config.json model_type
    std::string source;      // "search path" or "hub cache"
    int num_layers = 0, hidden_size = 0;
};

// $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
std::filesystem::path hub_cache_dir();

// Looks at each search path itself and its sub-folders two levels deep, then the hub cache.
// Unreadable folders and broken configs are skipped, never an error.
std::vector<FoundModel> discover_models(const std::vector<std::filesystem::path>& search_paths,
                                        const std::filesystem::path& hub_cache = hub_cache_dir());

}  // namespace meft
