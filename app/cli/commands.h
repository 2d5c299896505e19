// commands.h — the meft subcommands. Each registers its options on a CLI11 subcommand and runs
// when chosen; run functions return the process exit code (0 ok, 1 failure).
#pragma once
#include <functional>

#include <CLI/CLI.hpp>

namespace meft::cli {

using Runner = std::function<int()>;

Runner add_init_model(CLI::App& app);
Runner add_run(CLI::App& app);
Runner add_predict(CLI::App& app);
Runner add_plan(CLI::App& app);
Runner add_tokenize(CLI::App& app);
Runner add_runs(CLI::App& app);
Runner add_resume(CLI::App& app);
Runner add_export(CLI::App& app);
Runner add_schema(CLI::App& app);
Runner add_sweep(CLI::App& app);

}  // namespace meft::cli
