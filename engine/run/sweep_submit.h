// sweep_submit.h — submitting a planned sweep to Slurm, cancelling a sweep, and the row that
// records a sweep in the experiment database. Shared by `meft sweep` and the workbench.
#pragma once
#include "run/sweep.h"
#include "store/database.h"

namespace meft {

// Creates the sweep's folder (create_sweep), writes sweep.sbatch (sbatch_script) and submits it
// with sbatch; the job id goes into sweep.json and `s`. When sbatch refuses, Error quoting it and
// naming the script, which stays (fix it, or the cluster, and submit it by hand).
void submit_to_slurm(Sweep& s);

// Submits a stopped Slurm sweep's script again (a new job id in `s` and sweep.json): each task
// continues its expansion. Error when Slurm still has tasks of its job queued or running.
void resubmit_to_slurm(Sweep& s);

// Cancels every task that has not ended (scancel JOB; a local sweep: SIGINT to its submit process,
// which stops each task after its current step) and records when in sweep.json.
void cancel_sweep(Sweep& s);

// The experiment database's row for the sweep (store/database.h SweepRow).
SweepRow sweep_row(const Sweep& s);

}  // namespace meft
