// slurm.h — the Slurm commands a sweep uses: sbatch to submit its job array, squeue and sacct to
// see its tasks, scancel to cancel them. Each runs the real program (run/subprocess.h) and reads its
// machine-readable output; a failure is an Error quoting what the program said.
#pragma once
#include <filesystem>
#include <map>
#include <string>

namespace meft {

// sbatch --parsable SCRIPT: the new array job's id. Error with sbatch's own message when refused.
std::string slurm_submit(const std::filesystem::path& script);

// The array tasks Slurm still has in its queue (pending, running, completing, requeued…), by array
// index: their squeue state names ("PENDING", "RUNNING", …). Tasks that ended are absent.
std::map<int, std::string> slurm_queue(const std::string& job_id);

// How the array's ended tasks ended, by index, from sacct ("COMPLETED", "FAILED", "TIMEOUT",
// "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED"…; the last attempt's). `available` is
// false, with `why`, where the cluster keeps no accounting (sacct then says so).
struct SlurmAccounting {
    bool available = false;
    std::string why;
    std::map<int, std::string> states;
};
SlurmAccounting slurm_accounting(const std::string& job_id);

// scancel JOB: every task of the array, pending or running.
void slurm_cancel(const std::string& job_id);

// Parsers of the programs' outputs (exposed for tests).
std::map<int, std::string> parse_squeue_tasks(const std::string& out, const std::string& job_id);
std::map<int, std::string> parse_sacct_tasks(const std::string& out, const std::string& job_id);

}  // namespace meft
