// SPDX-License-Identifier: GPL-3.0-or-later
// malformed_cases.h — malformed experiment files shared by test_experiment (each is a meft::Error
// naming the file) and test_parsers_asan (the same texts through the parsers under
// AddressSanitizer and UndefinedBehaviorSanitizer).
#pragma once
#include <string>
#include <vector>

namespace meft::test {

// The text of each malformed experiment file.
inline std::vector<std::string> malformed_experiment_texts() {
    return {
        "",
        "[]",
        "null",
        "{",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"colour\": 1}",
        "{\"backbone\": {\"preset\": \"tiny\", \"path\": \"x\"}}",
        "{\"backbone\": {\"preset\": \"huge\"}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"task\": {\"name\": \"glue-ish\"}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"task\": {\"name\": \"sst2\"}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"training\": {\"batch_size\": 0}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"training\": {\"learning_rate\": \"fast\"}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"method\": {\"name\": \"magic\"}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"method\": {\"name\": \"lora\", \"lora\": {\"r\": 0}}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"method\": {\"name\": \"meft1\", \"meft\": {\"lambda\": 0.3}}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"training\": {\"seed\": []}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"tags\": [1, 2]}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"training\": {\"early_stopping\": 3}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"training\": {\"dropout\": 1.5}}",
        "{\"backbone\": {\"preset\": \"tiny\"}, \"output\": {\"save_model\": true}}",
        std::string("\x00\xff\xfe{\"a\"", 6),
        "{\"backbone\": {\"preset\": \"tiny\"}, \"method\": {\"name\": \"prefix\", \"meft\": {}}}",
    };
}

}  // namespace meft::test
