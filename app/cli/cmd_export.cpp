// meft export RUN — a stored run's model, as its checkpoint left it, written out again, for any
// run with a checkpoint (also one whose output.dir was never set): the model folder a run's
// output.save_model writes (config.json with the "meft" section, every tensor, the tokenizer
// files), or with --adapter Hugging Face PEFT's adapter layout (LoRA, (IA)3, prefix-tuning), or
// with --merged a plain transformers checkpoint with the method folded in (LoRA, (IA)3).
#include <cstdio>

#include "cli/commands.h"
#include "core/backend_select.h"
#include "core/error.h"
#include "store/database.h"
#include "run/run_outputs.h"
#include "run/runner.h"
#include "store/saved_model.h"

namespace meft::cli {

namespace {
struct ExportArgs {
    std::int64_t run = 0;
    std::string db, out;
    bool force = false;
    bool adapter = false, merged = false;
};

int run(const ExportArgs& a) {
    const std::filesystem::path out(a.out);
    if (holds_model(out) && !a.force)
        throw Error(a.out + " already holds a model (config.json or weights); pass --force to replace it, or choose another --out");
    ExperimentDb db(a.db.empty() ? ExperimentDb::default_path() : std::filesystem::path(a.db), DbAccess::Reading);
    const auto info = db.run(a.run);
    if (!info) throw Error("no run " + std::to_string(a.run) + " in " + db.path());
    auto backend = make_backend("cpu");
    RestoredRun r = restore_run(db, a.run, *backend);
    std::string what = "model";
    if (a.adapter) {
        // A preset has no folder for PEFT's base_model_name_or_path: its weights go to <out>/base.
        export_peft_adapter(*r.model, r.experiment, out, out / "base");
        what = "PEFT adapter";
    } else if (a.merged) {
        export_merged_model(*r.model, r.experiment, out);
        what = "merged checkpoint";
    } else {
        save_trained_model(*r.model, r.experiment, out, r.uuid);
    }
    std::fprintf(stderr, "run %lld (%s, %s) at step %d written to %s as a %s\n", static_cast<long long>(a.run),
                 info->status.c_str(), r.experiment.method.name().c_str(), r.step, a.out.c_str(), what.c_str());
    return 0;
}
}  // namespace

Runner add_export(CLI::App& app) {
    auto a = std::make_shared<ExportArgs>();
    app.add_option("run", a->run, "the run (its checkpoint: the end of a finished run, the last one of another)")->required();
    app.add_option("--db", a->db, "experiment database");
    app.add_option("--out", a->out, "output folder (created)")->required();
    app.add_flag("--force", a->force, "replace a model --out already holds");
    auto* adapter = app.add_flag("--adapter", a->adapter,
                                 "Hugging Face PEFT's adapter layout (lora, ia3, prefix); a preset's base weights go to OUT/base");
    auto* merged = app.add_flag("--merged", a->merged, "a plain transformers checkpoint with the method folded in (lora, ia3)");
    adapter->excludes(merged);
    return [a] { return run(*a); };
}

}  // namespace meft::cli
