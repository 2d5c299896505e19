#include "store/model_discovery.h"

#include <cstdlib>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "model/arch/arch.h"

namespace meft {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

// A model folder this engine can load, described; false when it is not one.
bool describe(const fs::path& dir, FoundModel& m) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / "config.json", ec)) return false;
    if (!fs::exists(dir / "model.safetensors", ec) && !fs::exists(dir / "model.safetensors.index.json", ec)) return false;
    std::ifstream in(dir / "config.json");
    const nlohmann::json c = nlohmann::json::parse(in, nullptr, false);
    if (!c.is_object() || !c.contains("model_type") || !c["model_type"].is_string()) return false;
    m.arch = c["model_type"].get<std::string>();
    const ArchSpec* spec = find_arch(m.arch);
    if (!spec) return false;
    m.path = dir;
    const auto number = [&](const char* key) {
        const auto it = c.find(key);
        return it != c.end() && it->is_number_integer() ? it->get<int>() : 0;
    };
    // every layer (an encoder-decoder's encoder and decoder), by the family's keys
    m.num_layers = number(spec->key_of_layers().c_str()) +
                   (spec->shape() == StackShape::EncoderDecoder ? number("decoder_layers") : 0);
    m.hidden_size = number(spec->key_of_hidden().c_str());
    return true;
}

}  // namespace

fs::path hub_cache_dir() {
    if (!env("HF_HUB_CACHE").empty()) return env("HF_HUB_CACHE");
    if (!env("HF_HOME").empty()) return fs::path(env("HF_HOME")) / "hub";
    if (!env("XDG_CACHE_HOME").empty()) return fs::path(env("XDG_CACHE_HOME")) / "huggingface" / "hub";
    return fs::path(env("HOME")) / ".cache" / "huggingface" / "hub";
}

std::vector<FoundModel> discover_models(const std::vector<fs::path>& search_paths, const fs::path& hub_cache) {
    std::vector<FoundModel> out;
    std::set<fs::path> seen;
    const auto add = [&](const fs::path& dir, const std::string& name, const std::string& source) {
        std::error_code ec;
        const fs::path canonical = fs::weakly_canonical(dir, ec);
        FoundModel m;
        if (seen.count(canonical) || !describe(dir, m)) return;
        seen.insert(canonical);
        m.name = name;
        m.source = source;
        out.push_back(std::move(m));
    };
    for (const fs::path& root : search_paths) {
        std::error_code ec;
        if (!fs::is_directory(root, ec)) continue;
        add(root, root.filename().string(), "search path");
        for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (it.depth() >= 1) it.disable_recursion_pending();  // the root's children and grandchildren
            if (it->is_directory(ec)) add(it->path(), fs::relative(it->path(), root, ec).string(), "search path");
        }
    }
    std::error_code ec;
    if (fs::is_directory(hub_cache, ec)) {
        for (const auto& repo : fs::directory_iterator(hub_cache, fs::directory_options::skip_permission_denied, ec)) {
            const std::string folder = repo.path().filename().string();
            if (folder.rfind("models--", 0) != 0) continue;
            std::string id;  // models--ORG--NAME -> ORG/NAME
            for (std::size_t i = 8; i < folder.size(); ++i) {
                if (folder.compare(i, 2, "--") == 0) {
                    id += '/';
                    ++i;
                } else {
                    id += folder[i];
                }
            }
            std::error_code ec2;
            for (const auto& snap : fs::directory_iterator(repo.path() / "snapshots", ec2))
                add(snap.path(), id + " (" + snap.path().filename().string().substr(0, 7) + ")", "hub cache");
        }
    }
    return out;
}

}  // namespace meft
