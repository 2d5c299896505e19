#include "data/jsonl_examples.h"

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace meft {

namespace {
std::vector<std::int32_t> int_array(const nlohmann::json& j, const char* key, const std::string& where) {
    std::vector<std::int32_t> out;
    if (!j.contains(key)) return out;
    const auto& a = j[key];
    if (!a.is_array()) throw Error(where + ": '" + key + "' must be an array of integers");
    out.reserve(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_number_integer())
            throw Error(where + ": '" + key + "'[" + std::to_string(i) + "] is " + a[i].dump() + ", expected an integer");
        const auto v = a[i].get<std::int64_t>();
        if (v < INT32_MIN || v > INT32_MAX) throw Error(where + ": '" + key + "'[" + std::to_string(i) + "] out of range");
        out.push_back(static_cast<std::int32_t>(v));
    }
    return out;
}
}  // namespace

std::vector<Example> read_jsonl_examples(const std::filesystem::path& file, const Tokenizer* tok, int max_length,
                                         const TextDecoding& decoding, int vocab_size) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot open");
    std::vector<Example> out;
    std::string line;
    for (int lineno = 1; std::getline(in, line); ++lineno) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = file.string() + ":" + std::to_string(lineno);
        line = decode_line(line, decoding, where);  // before the JSON parser sees it: our message, not its
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
            throw Error(where + ": invalid JSON (" + std::string(e.what()) + ")");
        }
        if (!j.is_object()) throw Error(where + ": expected a JSON object");
        for (auto it = j.begin(); it != j.end(); ++it) {
            const std::string& k = it.key();
            if (k != "input_ids" && k != "token_type_ids" && k != "attention_mask" && k != "label" && k != "target" &&
                k != "id" && k != "text" && k != "text_pair")
                throw Error(where + ": unknown key '" + k +
                            "' (expected input_ids, token_type_ids, attention_mask, or text, text_pair; label, target, id)");
        }
        Example e;
        if (j.contains("text")) {
            if (j.contains("input_ids")) throw Error(where + ": give either 'text' or 'input_ids', not both");
            if (!tok) throw Error(where + ": has 'text' but no tokenizer was given (pass --tokenizer, or keep the tokenizer files beside the model)");
            if (!j["text"].is_string()) throw Error(where + ": 'text' must be a string");
            if (j.contains("text_pair") && !j["text_pair"].is_string()) throw Error(where + ": 'text_pair' must be a string");
            const std::string a = j["text"].get<std::string>();
            const std::string b = j.contains("text_pair") ? j["text_pair"].get<std::string>() : std::string();
            Encoding enc = tok->encode(a, j.contains("text_pair") ? std::optional<std::string_view>(b) : std::nullopt, max_length);
            e.input_ids = std::move(enc.input_ids);
            e.token_type_ids = std::move(enc.token_type_ids);
            e.attention_mask = std::move(enc.attention_mask);
        } else {
            if (!j.contains("input_ids")) throw Error(where + ": missing key 'input_ids' (or 'text')");
            e.input_ids = int_array(j, "input_ids", where);
            e.token_type_ids = int_array(j, "token_type_ids", where);
            e.attention_mask = int_array(j, "attention_mask", where);
        }
        if (e.input_ids.empty()) throw Error(where + ": 'input_ids' is empty");
        for (std::size_t t = 0; vocab_size > 0 && t < e.input_ids.size(); ++t)
            if (e.input_ids[t] < 0 || e.input_ids[t] >= vocab_size)
                throw Error(where + ": token id " + std::to_string(e.input_ids[t]) + " at position " + std::to_string(t) +
                            " is outside the model's vocabulary (ids 0.." + std::to_string(vocab_size - 1) + ")");
        const std::size_t n = e.input_ids.size();
        if (!e.token_type_ids.empty() && e.token_type_ids.size() != n)
            throw Error(where + ": 'token_type_ids' has " + std::to_string(e.token_type_ids.size()) +
                        " entries, 'input_ids' has " + std::to_string(n));
        if (!e.attention_mask.empty() && e.attention_mask.size() != n)
            throw Error(where + ": 'attention_mask' has " + std::to_string(e.attention_mask.size()) +
                        " entries, 'input_ids' has " + std::to_string(n));
        for (std::int32_t m : e.attention_mask)
            if (m != 0 && m != 1) throw Error(where + ": 'attention_mask' values must be 0 or 1");
        if (j.contains("label")) {
            if (j["label"].is_number_integer()) e.label = j["label"].get<int>();
            else if (j["label"].is_number()) e.target = j["label"].get<double>();
            else throw Error(where + ": 'label' must be a number");
        }
        if (j.contains("target")) {
            if (!j["target"].is_number()) throw Error(where + ": 'target' must be a number");
            e.target = j["target"].get<double>();
        }
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace meft
