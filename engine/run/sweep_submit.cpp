#include "run/sweep_submit.h"

#include <csignal>

#include <sys/stat.h>

#include "core/error.h"
#include "core/file_io.h"
#include "run/slurm.h"
#include "run/sweep_status.h"

namespace meft {

void submit_to_slurm(Sweep& s) {
    if (s.mode != "slurm") throw Error("submit_to_slurm: " + s.dir.string() + " is a " + s.mode + " sweep");
    create_sweep(s);
    write_file_atomically(s.script_file(), sbatch_script(s));
    ::chmod(s.script_file().c_str(), 0755);
    try {
        s.job_id = slurm_submit(s.script_file());
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + "\nthe sweep's script is " + s.script_file().string() +
                    " (submit it by hand with sbatch once the problem is fixed; meft sweep gather collects its shards)");
    }
    write_sweep(s);
}

void resubmit_to_slurm(Sweep& s) {
    if (s.mode != "slurm") throw Error("resubmit_to_slurm: " + s.dir.string() + " is a " + s.mode + " sweep");
    if (!s.job_id.empty()) {
        const std::map<int, std::string> queued = slurm_queue(s.job_id);
        if (!queued.empty())
            throw Error(s.dir.string() + ": Slurm job " + s.job_id + " still has " + std::to_string(queued.size()) +
                        " task(s) queued or running; resume it when they have ended (or cancel it first)");
    }
    s.job_id = slurm_submit(s.script_file());
    s.cancelled_at.clear();
    write_sweep(s);
}

void cancel_sweep(Sweep& s) {
    if (s.mode == "slurm") {
        if (s.job_id.empty()) throw Error(s.dir.string() + ": this sweep was never submitted (no job id); nothing to cancel");
        slurm_cancel(s.job_id);
    } else {
        const SchedulerView v = ask_scheduler(s);
        if (v.local_alive) ::kill(static_cast<pid_t>(s.pid), SIGINT);
    }
    s.cancelled_at = utc_now();
    write_sweep(s);
}

SweepRow sweep_row(const Sweep& s) {
    SweepRow r;
    r.dir = s.dir.string();
    r.name = s.name;
    r.mode = s.mode;
    r.job_id = s.job_id;
    r.expansions = s.expansions();
    r.record = s.to_json();
    return r;
}

}  // namespace meft
