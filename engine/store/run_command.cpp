#include "store/run_command.h"

#include "core/error.h"

namespace meft {

namespace {
// The override's text of a value: its JSON, or a plain string as it is when apply_overrides
// would read that back as the same string (it is not itself JSON: a path, a name).
std::string value_text(const nlohmann::json& v) {
    if (v.is_string()) {
        const std::string& s = v.get_ref<const std::string&>();
        if (!s.empty() && nlohmann::json::parse(s, nullptr, false).is_discarded()) return s;
    }
    return v.dump();
}

void diff(const nlohmann::json& base, const nlohmann::json& edited, const std::string& path, std::vector<std::string>& out,
          std::vector<std::string>& removed) {
    for (auto it = base.begin(); it != base.end(); ++it)
        if (!edited.contains(it.key())) removed.push_back(path + it.key());
    for (auto it = edited.begin(); it != edited.end(); ++it) {
        const std::string key = path + it.key();
        if (it.key().empty() || it.key().find('.') != std::string::npos || it.key().find('=') != std::string::npos)
            throw Error("key '" + key + "' cannot be written as an override (it is empty or holds '.' or '=')");
        const auto b = base.find(it.key());
        if (b != base.end() && *b == *it) continue;
        if (b != base.end() && b->is_object() && it->is_object() && !it->empty()) {
            diff(*b, *it, key + ".", out, removed);
            continue;
        }
        out.push_back(key + "=" + value_text(*it));
    }
}
}  // namespace

std::vector<std::string> overrides_between(const nlohmann::json& base, const nlohmann::json& edited) {
    if (!base.is_object() || !edited.is_object()) throw Error("an experiment is a JSON object");
    std::vector<std::string> out, removed;
    diff(base, edited, "", out, removed);
    if (!removed.empty()) {
        std::string list;
        for (const std::string& k : removed) list += (list.empty() ? "" : ", ") + k;
        throw Error("the edited experiment leaves out " + list + ", which the file sets; an override cannot remove a key");
    }
    return out;
}

std::string shell_quoted(const std::string& s) {
    bool safe = !s.empty();
    for (char c : s)
        safe = safe && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        std::string_view("_-./=:,+@%").find(c) != std::string_view::npos);
    if (safe) return s;
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::string run_command(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                        const std::filesystem::path& db) {
    std::string cmd = "meft run " + shell_quoted(file.string());
    if (!db.empty()) cmd += " --db " + shell_quoted(db.string());
    for (const std::string& o : overrides) cmd += " --set " + shell_quoted(o);
    return cmd;
}

}  // namespace meft
