// SPDX-License-Identifier: GPL-3.0-or-later
// fuzz_experiment.cpp — libFuzzer target for the experiment file parser (store/experiment.h).
// Input: the text of an experiment file, optionally followed by 0xFF and command-line overrides
// (`--set KEY.PATH=VALUE`), one a line. The file goes through load_experiments as `meft run`
// reads it (JSON, overrides, sweeps, every key checked, paths resolved and checked), then each
// expansion through resolved_config and backend_options as a run records it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "store/experiment.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace meft;
    const auto parts = fuzz::split_parts(data, size, 2);
    const auto dir = fuzz::fresh_dir("experiment");
    const auto file = dir / "experiment.json";
    fuzz::write_file(file, parts[0]);
    std::vector<std::string> overrides;
    if (parts.size() > 1) {
        std::string_view rest = parts[1];
        while (!rest.empty() && overrides.size() < 8) {
            const std::size_t nl = rest.find('\n');
            overrides.emplace_back(rest.substr(0, nl));
            rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        }
    }
    fuzz::expect_only_meft_errors("load_experiments", [&] {
        for (const Experiment& e : load_experiments(file, overrides)) {
            (void)resolved_config(e).dump();
            (void)backend_options(e);
        }
    });
    return 0;
}
