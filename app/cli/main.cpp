// meft — the headless MEFT Workbench: the same experiments as the GUI, from a terminal.
// Usage errors (unknown flag, bad value) exit 2; failures while running exit 1.
#include <iostream>
#include <map>
#include <new>

#include "cli/commands.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/host_memory.h"

int main(int argc, char** argv) {
    CLI::App app{"meft — memory-efficient fine-tuning workbench (headless)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("meft ") + meft::version() + " (commit " + meft::git_commit() + ")");
    std::map<CLI::App*, meft::cli::Runner> runners;
    auto add = [&](const char* name, const char* help, meft::cli::Runner (*fn)(CLI::App&)) {
        CLI::App* sub = app.add_subcommand(name, help);
        runners[sub] = fn(*sub);
    };
    add("init-model", "write a random-initialised preset model in Hugging Face layout", meft::cli::add_init_model);
    add("run", "train and evaluate an experiment file", meft::cli::add_run);
    add("predict", "logits (a causal LM: log-likelihoods) for JSON-lines inputs", meft::cli::add_predict);
    add("tokenize", "token ids of a text, a pair or a GLUE split, as JSON lines", meft::cli::add_tokenize);
    add("resume", "continue a cancelled or interrupted run from its checkpoint", meft::cli::add_resume);
    add("export", "write a stored run's trained model (from its checkpoint) as a model folder", meft::cli::add_export);
    add("runs", "list, show or delete the runs in the experiment database", meft::cli::add_runs);
    add("plan", "activation memory of a training step, per layer, without computing anything", meft::cli::add_plan);
    add("sweep", "run a grid as a Slurm job array or local processes, follow it, gather its shards", meft::cli::add_sweep);
    add("schema", "the JSON Schema of an experiment's method section, from the engine's knob table", meft::cli::add_schema);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    }
    try {
        for (CLI::App* sub : app.get_subcommands()) return runners.at(sub)();
    } catch (const std::bad_alloc&) {
        // never a bare std::bad_alloc: how many bytes were asked for, and what is available
        std::cerr << "error: " << meft::out_of_memory_message("running meft " + app.get_subcommands().front()->get_name()) << "\n";
        return 1;
    } catch (const meft::Error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
