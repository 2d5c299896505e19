#include "run/sweep_status.h"

#include <fstream>
#include <optional>

#include <unistd.h>

#include "core/error.h"
#include "run/slurm.h"
#include "store/database.h"

namespace meft {

namespace fs = std::filesystem;

std::map<std::string, int> SweepStatus::counts() const {
    std::map<std::string, int> c;
    for (const ExpansionStatus& e : expansions) ++c[e.state];
    return c;
}

std::string file_tail(const fs::path& file, int lines) {
    std::ifstream in(file);
    if (!in) return {};
    std::vector<std::string> all;
    for (std::string l; std::getline(in, l);) all.push_back(l);
    std::string out;
    for (std::size_t i = all.size() > std::size_t(lines) ? all.size() - std::size_t(lines) : 0; i < all.size(); ++i)
        out += all[i] + "\n";
    return out;
}

namespace {

}  // namespace

std::optional<RunInfo> shard_latest_run(const fs::path& shard, std::string* problem) {
    std::error_code ec;
    if (!fs::exists(shard, ec) || fs::file_size(shard, ec) == 0) return std::nullopt;
    try {
        ExperimentDb db(shard, DbAccess::ReadOnly);
        std::vector<RunInfo> runs = db.runs();
        if (runs.empty()) return std::nullopt;
        const RunInfo* last = &runs.front();
        for (const RunInfo& r : runs)
            if (r.id > last->id) last = &r;
        return *last;
    } catch (const Error& e) {
        if (problem) *problem = e.what();  // being created by its task right now, or damaged: said as it is
        return std::nullopt;
    }
}

namespace {

bool is_running_state(const std::string& s) { return s == "RUNNING" || s == "COMPLETING" || s == "CONFIGURING"; }

}  // namespace

SchedulerView ask_scheduler(const Sweep& s) {
    SchedulerView v;
    if (s.mode == "local") {
        v.local_alive = s.pid > 0 && s.host == host_name() && !s.process.empty() && process_identity(s.pid) == s.process;
        v.note = v.local_alive ? "meft sweep submit --local (pid " + std::to_string(s.pid) + ") is running the tasks"
                               : "no process is running this local sweep's tasks";
        return v;
    }
    if (s.job_id.empty()) {
        v.note = "not submitted (no job id in sweep.json)";
        return v;
    }
    try {
        v.queue = slurm_queue(s.job_id);
    } catch (const Error& e) {
        v.reachable = false;
        v.note = std::string("squeue: ") + e.what();
        return v;
    }
    try {
        const SlurmAccounting a = slurm_accounting(s.job_id);
        v.ended = a.states;
        v.note = "job " + s.job_id + ": " + std::to_string(v.queue.size()) + " task" + (v.queue.size() == 1 ? "" : "s") +
                 " in the queue" + (a.available ? "" : "; sacct: " + a.why);
    } catch (const Error& e) {
        v.note = "job " + s.job_id + ": " + std::to_string(v.queue.size()) + " tasks in the queue; sacct: " + e.what();
    }
    return v;
}

SweepStatus sweep_status(const Sweep& s, const SchedulerView& view, const std::set<std::string>& gathered_uuids) {
    SweepStatus st;
    st.scheduler = view.note;
    for (int i = 1; i <= s.expansions(); ++i) {
        ExpansionStatus e;
        e.index = i;
        e.label = s.labels[static_cast<std::size_t>(i - 1)];
        std::string problem;
        const std::optional<RunInfo> run = shard_latest_run(s.shard(i), &problem);
        if (run) {
            e.run_uuid = run->uuid;
            e.run_status = run->status;
            e.steps = run->steps;
            e.gathered = gathered_uuids.count(run->uuid) > 0;
        }
        const auto queued = view.queue.find(i);
        const auto ended = view.ended.find(i);
        const std::string how = ended != view.ended.end() ? ended->second : "";
        if (!view.reachable && !(run && (run->status == "finished" || run->status == "failed"))) {
            e.state = "unknown";
            e.detail = "the scheduler could not be asked";
        } else if (queued != view.queue.end()) {
            e.state = is_running_state(queued->second) ? "running" : "queued";
            e.detail = queued->second;
            if (run && e.state == "running") e.detail += ", step " + std::to_string(run->steps);
            if (run && e.state == "queued") e.detail += ", resumes its run from step " + std::to_string(run->steps);
        } else if (s.mode == "local" && view.local_alive && (!run || run->status == "running" || run->status == "queued")) {
            e.state = run ? "running" : "queued";
            if (run) e.detail = "step " + std::to_string(run->steps);
        } else if (run && run->status == "finished") {
            e.state = "finished";
            e.detail = std::to_string(run->steps) + " steps";
            if (run->final_metrics.is_object() && run->final_metrics.value("early_stopped", false)) e.detail += ", early stopped";
        } else if (run && run->status == "failed") {
            e.state = "failed";
            e.detail = run->message;
        } else if (how == "CANCELLED" || (run && run->status == "cancelled") || (!run && !s.cancelled_at.empty())) {
            e.state = "cancelled";
            e.detail = run ? "stopped after step " + std::to_string(run->steps) + " (resumable)" : "before it started";
        } else if (run) {
            e.state = "failed";
            e.detail = "ended without finishing at step " + std::to_string(run->steps) +
                       (how.empty() ? "" : " (" + how + ")");
        } else if (fs::exists(s.log(i))) {
            e.state = "failed";
            e.detail = problem.empty() ? "ended without recording a run" + (how.empty() ? "" : " (" + how + ")") : problem;
        } else {
            e.state = s.mode == "slurm" && s.job_id.empty() ? "unknown" : s.mode == "local" ? "cancelled" : "unknown";
            e.detail = s.mode == "slurm" && s.job_id.empty() ? "not submitted"
                       : s.mode == "local"                    ? "never started (the sweep stopped first)"
                                                              : "not in Slurm's queue and nothing recorded" + (how.empty() ? "" : " (" + how + ")");
        }
        if (e.state == "failed") e.log_tail = file_tail(s.log(i), 8);
        st.expansions.push_back(std::move(e));
    }
    return st;
}

}  // namespace meft
