// meft export RUN — a stored run's model, as its checkpoint left it, written out again: the model
// folder a run's output.save_model writes (config.json with the "meft" section, every tensor, the
// tokenizer files), for any run with a checkpoint, also one whose output.dir was never set.
#include <cstdio>

#include "cli/commands.h"
#include "core/backend_select.h"
#include "core/error.h"
#include "store/database.h"
#include "store/runner.h"
#include "store/saved_model.h"

namespace meft::cli {

namespace {
struct ExportArgs {
    std::int64_t run = 0;
    std::string db, out;
    bool force = false;
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
    save_trained_model(*r.model, r.experiment, out, r.uuid);
    std::fprintf(stderr, "run %lld (%s, %s) at step %d written to %s\n", static_cast<long long>(a.run), info->status.c_str(),
                 r.experiment.method.name().c_str(), r.step, a.out.c_str());
    return 0;
}
}  // namespace

Runner add_export(CLI::App& app) {
    auto a = std::make_shared<ExportArgs>();
    app.add_option("run", a->run, "the run (its checkpoint: the end of a finished run, the last one of another)")->required();
    app.add_option("--db", a->db, "experiment database");
    app.add_option("--out", a->out, "output folder (created)")->required();
    app.add_flag("--force", a->force, "replace a model --out already holds");
    return [a] { return run(*a); };
}

}  // namespace meft::cli
