// config_json.h — reading and writing config.json keys, shared by the families in arch/: strict
// typed reads (a bool, a fraction or an out-of-range number for an int key is the wrong type, not
// silently converted), size limits, and the labels and head keys every classification config has.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace meft::config_json {

// The value of `key`, or `fallback` when absent or null; Error naming the file and key otherwise.
int get_int(const nlohmann::json& j, const char* key, int fallback, const std::string& where);
double get_double(const nlohmann::json& j, const char* key, double fallback, const std::string& where);
std::string get_string(const nlohmann::json& j, const char* key, const std::string& fallback, const std::string& where);
bool get_flag(const nlohmann::json& j, const char* key, bool fallback, const std::string& where);

// Sizes past these are not a model of these families but a damaged file; refusing them keeps the
// model from trying to allocate (or even declare) terabytes. Keys are named as `spec` names them.
void check_limits(const ModelConfig& c, const std::string& where);

// id2label (or num_labels) and the multiple-choice head (*ForMultipleChoice in
// architectures, or our "meft_head" key) into c.
void read_labels(ModelConfig& c, const nlohmann::json& j, const std::string& where);
// id2label, label2id and problem_type into j.
void write_labels(const ModelConfig& c, nlohmann::json& j);

}  // namespace meft::config_json
