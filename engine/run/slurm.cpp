#include "run/slurm.h"

#include <sstream>

#include "core/error.h"
#include "run/subprocess.h"

namespace meft {

namespace {
std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    std::size_t b = 0;
    while (b < s.size() && s[b] == ' ') ++b;
    return s.substr(b);
}

Captured checked(const std::vector<std::string>& argv) {
    Captured c = capture(argv);
    if (c.exit_code != 0)
        throw Error(command_line(argv) + " failed (exit " + std::to_string(c.exit_code) + "): " +
                    trimmed(c.err.empty() ? c.out : c.err));
    return c;
}

// "JOB_3" -> 3 for this job; "JOB_[4-7%2]" (squeue without -r) is expanded by the caller's -r.
bool array_index(const std::string& id, const std::string& job_id, int& index) {
    const std::string prefix = job_id + "_";
    if (id.rfind(prefix, 0) != 0) return false;
    const std::string rest = id.substr(prefix.size());
    if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos) return false;
    index = std::stoi(rest);
    return true;
}
}  // namespace

std::string slurm_submit(const std::filesystem::path& script) {
    const Captured c = checked({"sbatch", "--parsable", script.string()});
    // --parsable prints "JOBID" or "JOBID;CLUSTER"
    std::string id = trimmed(c.out);
    if (const std::size_t semi = id.find(';'); semi != std::string::npos) id = id.substr(0, semi);
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        throw Error("sbatch " + script.string() + " printed no job id (it printed: " + trimmed(c.out) + ")");
    return id;
}

std::map<int, std::string> parse_squeue_tasks(const std::string& out, const std::string& job_id) {
    std::map<int, std::string> states;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string id, state;
        if (!(fields >> id >> state)) continue;
        int index = 0;
        if (array_index(id, job_id, index)) states[index] = state;
    }
    return states;
}

std::map<int, std::string> slurm_queue(const std::string& job_id) {
    // -r: one line per array task (pending ones too); %i the task's "JOB_INDEX", %T its state.
    const Captured c = capture({"squeue", "-h", "-r", "-j", job_id, "-o", "%i %T"});
    if (c.exit_code != 0) {
        // A job that has left the queue entirely is "Invalid job id" for squeue: nothing queued.
        if (c.err.find("Invalid job id") != std::string::npos) return {};
        throw Error("squeue -j " + job_id + " failed (exit " + std::to_string(c.exit_code) + "): " + trimmed(c.err));
    }
    return parse_squeue_tasks(c.out, job_id);
}

std::map<int, std::string> parse_sacct_tasks(const std::string& out, const std::string& job_id) {
    std::map<int, std::string> states;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        const std::size_t bar = line.find('|');
        if (bar == std::string::npos) continue;
        int index = 0;
        if (!array_index(line.substr(0, bar), job_id, index)) continue;
        std::string state = line.substr(bar + 1);
        if (const std::size_t end = state.find_first_of("| "); end != std::string::npos) state = state.substr(0, end);
        states[index] = state;  // "CANCELLED by 0" -> "CANCELLED"; later lines (attempts) win
    }
    return states;
}

SlurmAccounting slurm_accounting(const std::string& job_id) {
    SlurmAccounting a;
    const Captured c = capture({"sacct", "-n", "-P", "-X", "-j", job_id, "-o", "JobID,State"});
    if (c.exit_code != 0) {
        a.why = trimmed(c.err.empty() ? c.out : c.err);
        return a;
    }
    a.available = true;
    a.states = parse_sacct_tasks(c.out, job_id);
    return a;
}

void slurm_cancel(const std::string& job_id) { checked({"scancel", job_id}); }

}  // namespace meft
