// merge.h — gathering runs recorded in other experiment databases (a sweep's shards: one SQLite
// file per task, since SQLite must not be shared by writers over NFS) into one.
//
// A run is identified by its UUID: a run already in the target is skipped, so gathering twice adds
// nothing. Each run comes with everything recorded for it (steps, evaluations, per-layer and step
// memory, reconstruction checks, events) and its experiment (reused when the target has one with
// the same name, file and specification). Runs move in one transaction per shard: a failure
// leaves the target as it was. Checkpoints stay beside their shards.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "store/database.h"

namespace meft {

struct MergeReport {
    std::vector<std::int64_t> added;  // the runs' new ids in the target
    int already = 0;                  // runs whose UUID the target has
    int not_finished = 0;             // runs left out: not finished (still running, failed, cancelled)
};

// The shard is opened (and migrated to the current schema) first; finished_only=false gathers every
// run that is not running.
MergeReport merge_runs(ExperimentDb& into, const std::filesystem::path& shard, bool finished_only = true);

// The shards a path names: an .sqlite file itself, or every .sqlite file in a folder and in its
// shards/ subfolder, sorted. Error when there are none.
std::vector<std::filesystem::path> shard_files(const std::filesystem::path& path);

}  // namespace meft
