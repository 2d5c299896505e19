#include "train/memory_timeline.h"

#include <algorithm>
#include <iterator>

#include "core/error.h"
#include "model/memory_report.h"

namespace meft {

std::vector<std::int64_t> StepTimeline::total() const {
    std::vector<std::int64_t> t(events.size(), 0);
    for (const TimelineLane& l : lanes)
        for (std::size_t i = 0; i < l.alive.size(); ++i) t[i] += l.alive[i];
    return t;
}

StepTimeline timeline_of(const std::vector<MeterEvent>& events, const ModelConfig& cfg) {
    StepTimeline tl;
    tl.events = events;
    const int L = cfg.total_layers();
    // Lanes: held per layer (embeddings .. head), then the other arenas.
    for (int l = -1; l <= L; ++l) tl.lanes.push_back({"held", l, cfg.layer_label(l) + " (held)", {}});
    tl.lanes.push_back({"streams", -2, "stored streams", {}});  // MEFT: the segment's output, no one layer's
    const std::pair<const char*, const char*> others[] = {{"backward scratch", "activation gradients"},
                                                          {"layer temporaries", "temporaries"},
                                                          {"recomputed layer", "recomputed"}};
    for (const auto& [arena, label] : others) tl.lanes.push_back({label, -2, label, {}});
    const auto lane_of = [&](const MeterEvent& e) -> std::size_t {
        if (e.arena == "activations")
            return is_stored_stream(e.name) ? static_cast<std::size_t>(L + 2)
                                            : static_cast<std::size_t>(std::clamp(e.layer, -1, L) + 1);
        for (std::size_t k = 0; k < std::size(others); ++k)
            if (e.arena == others[k].first) return static_cast<std::size_t>(L + 3) + k;
        throw Error("memory timeline: an event of an unknown arena '" + e.arena + "'");
    };
    std::vector<std::int64_t> alive(tl.lanes.size(), 0);
    for (TimelineLane& lane : tl.lanes) lane.alive.reserve(events.size());
    std::int64_t total = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
        const MeterEvent& e = events[i];
        if (e.arena == "phase") {  // a boundary, no bytes
            if (e.name == "backward" && tl.backward_from < 0) tl.backward_from = static_cast<int>(i);
        } else {
            alive[lane_of(e)] += e.delta;
        }
        total += e.delta;
        if (total > tl.peak) {
            tl.peak = total;
            tl.peak_at = static_cast<int>(i);
        }
        for (std::size_t k = 0; k < alive.size(); ++k) tl.lanes[k].alive.push_back(alive[k]);
    }
    return tl;
}

}  // namespace meft
