// run_command.h — the `meft run` line that reproduces an experiment as edited in a front end: the
// saved file plus one `--set KEY.PATH=VALUE` per value that differs from it (apply_overrides'
// syntax), quoted for a POSIX shell.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace meft {

// The overrides that make `base` into `edited`: apply_overrides(base, result) == edited. One per
// changed or added value, in key order; an object is descended into when both sides have one.
// Throws Error naming the keys when `edited` lacks a key `base` has (an override cannot delete
// one), or either is not a JSON object.
std::vector<std::string> overrides_between(const nlohmann::json& base, const nlohmann::json& edited);

// `s` as one POSIX shell word: unchanged when it holds only safe characters, else in single quotes.
std::string shell_quoted(const std::string& s);

// "meft run FILE [--db DB] [--set K=V ...]" (db empty: the default database).
std::string run_command(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                        const std::filesystem::path& db = {});

}  // namespace meft
