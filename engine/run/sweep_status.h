// sweep_status.h — where each expansion of a sweep stands: queued, running, finished, failed or
// cancelled, from what the scheduler says (Slurm's queue and accounting, or for a local sweep
// whether its `meft sweep submit` process still runs) and what the task recorded in its shard.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "run/sweep.h"

namespace meft {

struct ExpansionStatus {
    int index = 0;             // 1-based
    std::string label;
    std::string state;         // "queued", "running", "finished", "failed", "cancelled", "unknown"
    std::string detail;        // the scheduler's state, the run's step or message, …
    std::string run_uuid;      // the shard's latest run ("" when it recorded none)
    std::string run_status;    // that run's status in the shard
    int steps = 0;             // steps it recorded
    bool gathered = false;     // its run is in the main database
    std::string log_tail;      // a failed expansion's log, last lines
};

struct SweepStatus {
    std::vector<ExpansionStatus> expansions;
    std::string scheduler;     // what was asked and how it answered ("squeue: 2 tasks queued", …)
    std::map<std::string, int> counts() const;  // state -> expansions in it
};

// What the scheduler says, gathered by the caller (slurm.h, or the local sweep's process).
struct SchedulerView {
    bool reachable = true;                     // false: squeue could not be asked (why in `note`)
    std::map<int, std::string> queue;          // index -> state, tasks still in the queue
    std::map<int, std::string> ended;          // index -> how it ended (sacct), when known
    bool local_alive = false;                  // local sweep: its submit process still runs
    std::string note;
};

// Asks the scheduler about `s` (squeue + sacct for Slurm; the submit process for a local sweep).
SchedulerView ask_scheduler(const Sweep& s);

// Combines the scheduler's view with the shards. `gathered_uuids`: the main database's run UUIDs
// among the shards' (for the gathered flag). Shards are read only, never written.
SweepStatus sweep_status(const Sweep& s, const SchedulerView& view, const std::set<std::string>& gathered_uuids = {});

// The shard's latest run (a requeued task that could not resume starts another); none when the
// shard has no run yet, with the reason in *problem when it cannot be read (being created, damaged).
std::optional<RunInfo> shard_latest_run(const std::filesystem::path& shard, std::string* problem = nullptr);

// The last `lines` lines of a file ("" when it cannot be read).
std::string file_tail(const std::filesystem::path& file, int lines);

}  // namespace meft
